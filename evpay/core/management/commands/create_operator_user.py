from django.core.management.base import BaseCommand, CommandError

from evpay.core.errors import DomainError
from evpay.core.services import operator_get, operator_user_create


class Command(BaseCommand):
    help = "Create a user of an operator with role admin or viewer."

    def add_arguments(self, parser):
        parser.add_argument("--operator", required=True, help="op_... id or name")
        parser.add_argument("--username", required=True)
        parser.add_argument("--password", required=True)
        parser.add_argument("--role", required=True, choices=["admin", "viewer"])

    def handle(self, *args, operator, username, password, role, **options):
        try:
            user = operator_user_create(
                operator=operator_get(ref=operator), username=username, password=password, role=role
            )
        except DomainError as exc:
            raise CommandError(exc.detail) from exc
        self.stdout.write(f"{user.username}")
