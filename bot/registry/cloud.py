"""Short-lived registry logins from a cloud, instead of a static password.

A credentials entry may name a cloud login instead of ``username``/``password``
(``REGISTRY_CREDENTIALS``, docs/registries.md). The login is asked when a
registry first wants it and kept until shortly before it expires, then asked
again: `serve` follows the cloud's rotation without a restart.

* **ECR** (``ecr: {region, registryId}``): AWS's ``GetAuthorizationToken``, with
  the AWS credentials boto3 finds (environment, profile, instance or pod role).
  Its tokens last 12 hours. Needs ``pip install 'image-automation-bot[aws]'``.
* **ACR** (``acr: {tenant}``): an Entra ID token from azure-identity's default
  chain (environment, workload identity, managed identity, Azure CLI), exchanged
  at the registry's ``/oauth2/exchange`` for an ACR refresh token, the password
  of user ``00000000-0000-0000-0000-000000000000``. Needs ``[azure]``.
* **Artifact Registry and GCR** (``gcp: {}``): an access token from Google's
  Application Default Credentials (``GOOGLE_APPLICATION_CREDENTIALS``, gcloud's
  login, or the metadata server of GCE, GKE or Cloud Run), user
  ``oauth2accesstoken``. Tokens last about an hour. Needs ``[gcp]``.

The cloud's library is imported only when a login is first asked, and its
calls run in a thread: they block. Nothing here logs or returns a secret in a
message.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import calendar
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from bot.registry.errors import CredentialsError

#: A login is asked again this long before it expires (ECR's last 12 hours).
REFRESH_MARGIN = 30 * 60.0
#: Google's access tokens last about an hour: asked again 5 minutes before the end.
GCP_REFRESH_MARGIN = 5 * 60.0
#: The scope Artifact Registry and GCR accept a token of.
GCP_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
#: The Entra ID scope whose token ACR exchanges for its own.
AZURE_SCOPE = "https://management.azure.com/.default"
#: The user an ACR refresh token logs in as.
ACR_USER = "00000000-0000-0000-0000-000000000000"
#: ACR's refresh tokens last 3 hours; one whose expiry cannot be read is kept this long.
ACR_FALLBACK_LIFETIME = 3600.0
#: How long one cloud call may take.
CALL_TIMEOUT = 30.0


@dataclass(frozen=True)
class Login:
    username: str
    password: str
    expires_at: float  # Unix seconds


class CloudLogin(Protocol):
    """Where a short-lived login comes from."""

    #: Says which cloud in messages ("ECR in eu-west-1").
    description: str

    def fetch(self) -> Login:
        """Ask the cloud (blocking; `LoginCache` runs it in a thread)."""
        ...


class LoginCache:
    """One entry's login: fetched when needed, kept until `REFRESH_MARGIN` before it ends."""

    def __init__(
        self,
        cloud: CloudLogin,
        *,
        clock: Callable[[], float] = time.time,
        margin: float = REFRESH_MARGIN,
    ) -> None:
        self.cloud = cloud
        self._clock = clock
        self._margin = margin
        self._login: Login | None = None
        self._lock = asyncio.Lock()
        self.fetched = 0  # how many times the cloud was asked
        #: The last logins handed out, so that messages can be scrubbed of old ones too.
        self.issued: list[Login] = []

    def __repr__(self) -> str:
        return f"LoginCache({self.cloud.description})"  # never the login

    def renew_at(self, login: Login) -> float:
        """When `login` is asked again: what caches of what it authorizes must not outlive."""
        return login.expires_at - self._margin

    async def login(self) -> Login:
        current = self._login
        if current is not None and self._clock() < self.renew_at(current):
            return current
        async with self._lock:  # concurrent scans share one call
            current = self._login
            if current is not None and self._clock() < self.renew_at(current):
                return current
            try:
                async with asyncio.timeout(CALL_TIMEOUT):
                    fresh = await asyncio.to_thread(self.cloud.fetch)
            except TimeoutError:
                raise CredentialsError(
                    f"{self.cloud.description}: no login within {CALL_TIMEOUT:g}s"
                ) from None
            self.fetched += 1
            self._login = fresh
            self.issued = [*self.issued[-3:], fresh]
            return fresh


class EcrLogin:
    """AWS ECR's ``GetAuthorizationToken`` for one registry (account) in one region."""

    def __init__(self, *, region: str, registry_id: str | None) -> None:
        self.region = region
        self.registry_id = registry_id
        self.description = f"ECR in {region}" + (f" (account {registry_id})" if registry_id else "")

    def fetch(self) -> Login:
        try:
            import boto3
            import botocore.exceptions
        except ImportError:
            raise CredentialsError(
                f"{self.description}: logging in to ECR needs boto3: "
                "pip install 'image-automation-bot[aws]'"
            ) from None
        try:
            client = boto3.client("ecr", region_name=self.region)
            options = {"registryIds": [self.registry_id]} if self.registry_id else {}
            answer = client.get_authorization_token(**options)
        except botocore.exceptions.NoCredentialsError:
            raise CredentialsError(
                f"{self.description}: no AWS credentials found (environment, profile, or an "
                "instance or pod role); give the bot's process some"
            ) from None
        except botocore.exceptions.ClientError as exc:
            error = exc.response.get("Error", {})
            raise CredentialsError(
                f"{self.description}: AWS refused GetAuthorizationToken: "
                f"{error.get('Code', 'error')}: {error.get('Message', '')}".rstrip(": ")
            ) from None
        except botocore.exceptions.BotoCoreError as exc:
            raise CredentialsError(f"{self.description}: {type(exc).__name__}: {exc}") from None
        try:
            data = answer["authorizationData"][0]
            decoded = base64.b64decode(data["authorizationToken"], validate=True).decode()
            username, _, password = decoded.partition(":")
            expires_at = data["expiresAt"].timestamp()
        except (KeyError, IndexError, TypeError, AttributeError, ValueError, binascii.Error):
            raise CredentialsError(
                f"{self.description}: GetAuthorizationToken answered without a usable token"
            ) from None
        if not username or not password:
            raise CredentialsError(f"{self.description}: the token holds no user and password")
        return Login(username, password, expires_at)


class GcpLogin:
    """An access token from Google's Application Default Credentials."""

    description = "Google Application Default Credentials"

    def fetch(self) -> Login:
        try:
            import google.auth
            import google.auth.exceptions
            import google.auth.transport.requests
        except ImportError:
            raise CredentialsError(
                f"{self.description}: logging in to Artifact Registry or GCR needs google-auth: "
                "pip install 'image-automation-bot[gcp]'"
            ) from None
        try:
            credentials, _project = google.auth.default(scopes=[GCP_SCOPE])
            credentials.refresh(google.auth.transport.requests.Request())
        except google.auth.exceptions.DefaultCredentialsError:
            raise CredentialsError(
                f"{self.description}: none found; set GOOGLE_APPLICATION_CREDENTIALS, or run "
                "the bot where Google's metadata server gives it an identity"
            ) from None
        except google.auth.exceptions.GoogleAuthError as exc:
            raise CredentialsError(
                f"{self.description}: no access token: {type(exc).__name__}"
            ) from None
        expiry = credentials.expiry  # naive UTC
        if not credentials.token or expiry is None:
            raise CredentialsError(f"{self.description}: the token came without an expiry")
        return Login("oauth2accesstoken", credentials.token, calendar.timegm(expiry.timetuple()))


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None  # the Entra token goes to the registry itself, nowhere else


class AcrLogin:
    """An Entra ID token exchanged at the registry for an ACR refresh token."""

    def __init__(self, *, registry: str, tenant: str | None, scheme: str = "https") -> None:
        self.registry = registry
        self.tenant = tenant
        self.scheme = scheme
        self.description = f"ACR login for {registry}"

    def fetch(self) -> Login:
        try:
            import azure.core.exceptions
            from azure.identity import DefaultAzureCredential
        except ImportError:
            raise CredentialsError(
                f"{self.description}: logging in to ACR needs azure-identity: "
                "pip install 'image-automation-bot[azure]'"
            ) from None
        try:
            entra = DefaultAzureCredential().get_token(AZURE_SCOPE)
        except azure.core.exceptions.ClientAuthenticationError:
            raise CredentialsError(
                f"{self.description}: no Entra ID identity found (environment, workload or "
                "managed identity, Azure CLI); give the bot's process one"
            ) from None
        form = {"grant_type": "access_token", "service": self.registry, "access_token": entra.token}
        if self.tenant:
            form["tenant"] = self.tenant
        request = urllib.request.Request(
            f"{self.scheme}://{self.registry}/oauth2/exchange",
            data=urllib.parse.urlencode(form).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            method="POST",
        )
        opener = urllib.request.build_opener(_NoRedirects)
        try:
            with opener.open(request, timeout=CALL_TIMEOUT) as answer:
                refresh = json.loads(answer.read(1 << 20))["refresh_token"]
        except urllib.error.HTTPError as exc:
            raise CredentialsError(
                f"{self.description}: the registry refused the Entra ID token (HTTP {exc.code}); "
                "the identity needs the AcrPull role on it"
            ) from None
        except (OSError, ValueError, KeyError, TypeError):
            raise CredentialsError(
                f"{self.description}: no refresh token from {self.registry}/oauth2/exchange"
            ) from None
        if not isinstance(refresh, str) or not refresh:
            raise CredentialsError(f"{self.description}: the exchange gave an empty token")
        return Login(ACR_USER, refresh, _jwt_expiry(refresh) or time.time() + ACR_FALLBACK_LIFETIME)


def _jwt_expiry(token: str) -> float | None:
    """The ``exp`` of a JWT, read without verifying it (the registry checks its own token)."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return float(claims["exp"])
    except (IndexError, ValueError, KeyError, TypeError, binascii.Error):
        return None
