"""Tests that need a tool the machine may lack (node, chromium, skopeo).

`missing(why)` skips the test, as the project's rule asks, unless
ALB_OIDC_NO_SKIP=1 (CI's .ci/run sets it): then the skip is a failure, so a
CI machine without the tool can never pass by skipping.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def missing(why: str) -> NoReturn:
    if os.environ.get("ALB_OIDC_NO_SKIP") == "1":
        pytest.fail(f"{why} (ALB_OIDC_NO_SKIP=1: a missing tool is a failure)", pytrace=False)
    pytest.skip(why)
