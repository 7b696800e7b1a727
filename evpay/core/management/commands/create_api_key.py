from django.core.management.base import BaseCommand, CommandError

from evpay.core.errors import DomainError
from evpay.core.services import api_key_create, operator_get


class Command(BaseCommand):
    help = "Create an API key for an operator and print it on its own line (the only time it is shown)."

    def add_arguments(self, parser):
        parser.add_argument("--operator", required=True, help="op_... id or name")
        parser.add_argument("--scopes", required=True, help="comma-separated scopes, or *")
        parser.add_argument("--name", default="")

    def handle(self, *args, operator, scopes, name, **options):
        try:
            _, raw_key = api_key_create(operator=operator_get(ref=operator), scopes=scopes.split(","), name=name)
        except DomainError as exc:
            raise CommandError(exc.detail) from exc
        self.stdout.write(raw_key)
