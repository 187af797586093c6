"""The bot's GitHub layer: App auth, the REST client, repository reading/writing, PRs, checks.

Modules: `auth` (credentials, JWT, token cache), `client` (GitHubClient/AppClient on
gidgethub), `trees` (a repository's files as values: entries, blob cache, path rules),
`repo` (reading trees and blobs, commits, branches), `tarball`, `pulls`, `checks`, `errors`.
"""
