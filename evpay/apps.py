from django.contrib.admin.apps import AdminConfig


class EvpayAdminConfig(AdminConfig):
    default_site = "evpay.dashboard.EvpayAdminSite"
