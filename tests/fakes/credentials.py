"""A TokenCredential for tests of the Azure adapters: one fixed token, and the scopes it was asked for."""

from __future__ import annotations

from typing import Any

from azure.core.credentials import AccessToken


class StaticCredential:
    """Hands out ``token`` (valid until 2100) and records the scopes asked for."""

    def __init__(self, token: str = "static-token") -> None:
        self.token = token
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken(self.token, 4_102_444_800)
