from django.core.management.base import BaseCommand

from charging.demo import demo_seed


class Command(BaseCommand):
    help = "Create (or reuse) the demo operator with realistic data, and print a fresh API key for it."

    def add_arguments(self, parser):
        parser.add_argument("--name", default="Demo CPO")
        parser.add_argument("--admin-username", default="demo-admin")
        parser.add_argument("--admin-password", default="demo-admin-password")

    def handle(self, *args, name, admin_username, admin_password, **options):
        result = demo_seed(name=name, admin_username=admin_username, admin_password=admin_password)
        self.stderr.write(
            f"Operator {result.operator.name} ({result.operator.id}); "
            f"admin user {admin_username!r} / {admin_password!r} at /admin/"
        )
        self.stderr.write("API key (shown once):")
        self.stdout.write(result.api_key)
