from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ApiAuthConfig(AppConfig):
    name = "apiauth"
    verbose_name = _("API authentication")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import pre_delete

        from apiauth import audit, checks  # noqa: F401  (registers the system checks)
        from apiauth.models import AbstractCredential

        for model in self.get_models():
            if issubclass(model, AbstractCredential):
                pre_delete.connect(audit.record_deletion, sender=model, dispatch_uid=model.__name__)
