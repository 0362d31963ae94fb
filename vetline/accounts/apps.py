from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "vetline.accounts"
    label = "accounts"
    verbose_name = "Social account registry"
