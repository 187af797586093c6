"""The bot's GitHub layer: App auth, the REST client, repository reading/writing, PRs, checks.

Modules: `auth` (credentials, JWT, token cache), `client` (GitHubClient/AppClient on
gidgethub), `repo` (trees, blobs, commits, branches), `tarball`, `pulls`, `checks`,
`errors`.
"""
