"""The podinfo repository that the GitHub-side tests and benchmarks reconcile.

One config (one image repository, one semver policy, one automation over
``./clusters``) and one Deployment whose container image carries the policy's
marker. The defaults give the exact bytes the tests compare against; the
keyword arguments give the variants (another image, a broken range, direct
commits, a registry credential).
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.config import CONFIG_PATH

IMAGE = "ghcr.io/stefanprodan/podinfo"
NAMESPACE = "flux-system"
POLICY = "podinfo"
AUTOMATION = "podinfo-update"
#: The bot's default push branch for `AUTOMATION`: ``image-automation/<name>``.
BRANCH = f"image-automation/{AUTOMATION}"
SEMVER_RANGE = ">=5.0.0 <6"
UPDATE_PATH = "./clusters"
DEPLOY_PATH = "clusters/podinfo.yaml"
LABELS = ("image-automation",)
#: The marker on the Deployment's image line.
MARKER = f'# {{"$imagepolicy": "{NAMESPACE}:{POLICY}"}}'


def podinfo_config(
    *,
    image: str = IMAGE,
    credentials: str | None = None,
    semver_range: str = SEMVER_RANGE,
    update_path: str = UPDATE_PATH,
    git: str | None = None,
    labels: Sequence[str] = LABELS,
    interval: str | None = None,
    more_policies: str = "",
) -> str:
    """``.github/image-automation.yml`` with one policy and one automation.

    ``git`` is the automation's ``git:`` value as flow YAML, e.g.
    ``"{push: {branch: main}}"``; no ``labels`` leaves out ``pullRequest``.
    ``interval`` is the image repository's and the automation's; ``more_policies``
    are further ``imagePolicies`` entries, as YAML lines.
    """
    every = [f"    interval: {interval}"] if interval else []
    lines = [
        "version: 1",
        f"namespace: {NAMESPACE}",
        "imageRepositories:",
        f"  - name: {POLICY}",
        f"    image: {image}",
        *([f"    credentials: {credentials}"] if credentials else []),
        *every,
        "imagePolicies:",
        f"  - name: {POLICY}",
        f"    imageRepositoryRef: {POLICY}",
        "    policy:",
        f"      semver: {{range: '{semver_range}'}}",
        *more_policies.splitlines(),
        "imageUpdateAutomations:",
        f"  - name: {AUTOMATION}",
        *every,
        *([f"    git: {git}"] if git else []),
        f"    update: {{path: {update_path}, strategy: Setters}}",
        *(["    pullRequest:", f"      labels: [{', '.join(labels)}]"] if labels else []),
    ]
    return "\n".join(lines) + "\n"


def deployment(tag: str, *, image: str = IMAGE, replicas: int = 1) -> bytes:
    """The podinfo Deployment, its container at ``image:tag`` with the policy's marker."""
    return f"""\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: podinfo
  namespace: default
spec:
  replicas: {replicas}
  template:
    spec:
      containers:
        - name: podinfo
          image: {image}:{tag} {MARKER}
""".encode()


def podinfo_files(
    tag: str = "5.0.0", *, image: str = IMAGE, config: str | None = None
) -> dict[str, bytes]:
    """The config at `CONFIG_PATH` and the Deployment at `DEPLOY_PATH` (at ``image:tag``).

    ``config`` is the config's text; by default `podinfo_config` for ``image``.
    """
    if config is None:
        config = podinfo_config(image=image)
    return {CONFIG_PATH: config.encode(), DEPLOY_PATH: deployment(tag, image=image)}
