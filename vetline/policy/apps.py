from django.apps import AppConfig


class PolicyConfig(AppConfig):
    name = "vetline.policy"
    label = "policy"
    verbose_name = "Policies and screening"
