"""``python -m service.api``: print the OpenAPI document (``make docs`` writes docs/openapi.json from it)."""

from __future__ import annotations

import json
import sys

from service.api.http.app import openapi_document

if __name__ == "__main__":
    json.dump(openapi_document(), sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
