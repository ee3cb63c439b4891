#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys
from pathlib import Path


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "skypemanager.settings")
    # The .env beside this file (`make run` writes the laptop defaults there; production's is
    # copied from .env.example), so `manage.py createsuperuser` in a fresh shell runs with the
    # same settings as the portal. Variables already in the environment win; ENV_FILE names
    # another file, and ENV_FILE= (empty, as the test suite sets it) reads none.
    from dotenv import load_dotenv

    env_file = os.environ.get("ENV_FILE", str(Path(__file__).resolve().parent / ".env"))
    if env_file:
        load_dotenv(env_file, override=False)
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
