from django.core.management.base import BaseCommand, CommandError

from evpay.core.errors import DomainError
from evpay.core.services import operator_create


class Command(BaseCommand):
    help = "Create an operator and print its id (op_...) on its own line."

    def add_arguments(self, parser):
        parser.add_argument("name")

    def handle(self, *args, name, **options):
        try:
            operator = operator_create(name=name)
        except DomainError as exc:
            raise CommandError(exc.detail) from exc
        self.stdout.write(operator.id)
