"""``python -m bench.sites.setup N``: migrate the site of ``DJANGO_SETTINGS_MODULE`` and print
``N`` fresh API keys for it, one per line. Run once per contender by ``bench e2e``."""

from __future__ import annotations

import os
import sys

import django


def main() -> None:
    count = int(sys.argv[1])
    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    if "rest_framework_api_key" in settings.INSTALLED_APPS:
        from rest_framework_api_key.models import APIKey as DRFAPIKey

        keys = [DRFAPIKey.objects.create_key(name=f"e2e-{i}")[1] for i in range(count)]
    else:
        from django.contrib.auth import get_user_model

        from apiauth.models import APIKey

        owner, _ = get_user_model()._default_manager.get_or_create(username="e2e-bench")
        demo = os.environ.get("DJANGO_SETTINGS_MODULE") == "project.settings"
        plan = "enterprise" if demo else ""
        keys = [
            APIKey.objects.create_key(name=f"e2e-{i}", owner=owner, plan=plan)[1]
            for i in range(count)
        ]
    sys.stdout.write("\n".join(keys) + "\n")


if __name__ == "__main__":
    main()
