import importlib.util

from django.apps import AppConfig, apps
from django.utils.translation import gettext_lazy as _


class ApiAuthConfig(AppConfig):
    name = "apiauth"
    verbose_name = _("API authentication")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model
        from django.contrib.auth.signals import user_login_failed
        from django.core.signals import request_finished, setting_changed
        from django.db.models.signals import post_delete, post_save, pre_delete

        from apiauth import audit, cache, checks, keyring, login, revocation, signals, usage  # noqa: F401
        from apiauth.models import AbstractCredential, SigningKey
        from apiauth.store import base as store

        for model in self.get_models():
            if issubclass(model, AbstractCredential):
                uid = model.__name__
                if model not in cache.credential_models:
                    cache.credential_models.append(model)
                pre_delete.connect(audit.record_deletion, sender=model, dispatch_uid=uid)
                post_save.connect(cache.credential_changed, sender=model, dispatch_uid=uid)
                post_delete.connect(cache.credential_changed, sender=model, dispatch_uid=uid)
        post_save.connect(keyring.changed, sender=SigningKey, dispatch_uid="apiauth-keyring")
        post_delete.connect(keyring.changed, sender=SigningKey, dispatch_uid="apiauth-keyring")
        signals.signing_keys_changed.connect(keyring.changed, dispatch_uid="apiauth-keyring")
        signals.credentials_changed.connect(cache.lineages_changed, dispatch_uid="apiauth-cache")
        user = get_user_model()
        post_save.connect(cache.owner_changed, sender=user, dispatch_uid="apiauth-owner")
        post_delete.connect(cache.owner_changed, sender=user, dispatch_uid="apiauth-owner")
        request_finished.connect(usage.flush, dispatch_uid="apiauth-usage")
        setting_changed.connect(cache.settings_changed, dispatch_uid="apiauth-cache")
        user_login_failed.connect(login.login_failed, dispatch_uid="apiauth-login")
        if apps.is_installed("django.contrib.admin"):
            login.limit_default_admin_site()
        if importlib.util.find_spec("drf_spectacular") is not None:
            # Registers the schema extensions (drf-spectacular finds them by import).
            import apiauth.openapi  # noqa: F401
        # Another Redis server than before (a failover): copies confirmed against the old one
        # are read again. The store back after an outage: the marks it missed are written.
        if cache.clear_all not in store.server_changed:
            store.server_changed.append(cache.clear_all)
        if revocation.publish_pending not in store.recovered:
            store.recovered.append(revocation.publish_pending)
