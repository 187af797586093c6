"""What the store hands out: plain typed records, no SQL."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.policy.model import LatestRef


@dataclass
class RepositoryRecord:
    full_name: str
    installation_id: int
    default_branch: str | None = None
    head_sha: str | None = None  # default-branch head at the last complete run
    config_sha: str | None = None
    config_text: bytes | None = None
    # Something happened that the short-circuit cannot see (a count, so a run can
    # tell whether more happened while it ran).
    dirty: int = 1
    #: Policy name -> message of the policies that failed in the last complete run.
    policy_errors: dict[str, str] = field(default_factory=dict)
    #: Automations the last complete run left for their schedule's next window.
    deferred: list[str] = field(default_factory=list)


@dataclass
class AutomationState:
    repository: str
    automation: str
    push_branch: str = ""
    base_branch: str = ""
    base_sha: str | None = None
    written_sha: str | None = None  # the last commit the bot wrote to push_branch
    # The one before: a crash between moving the branch and saving must not look
    # like someone else's push.
    prior_sha: str | None = None
    pr_number: int | None = None
    pr_title: str | None = None
    pr_body: str | None = None
    pr_labels: list[str] = field(default_factory=list)
    change_set: str | None = None
    #: Someone else pushed to the branch: the bot leaves it alone (see bot/pullrequest.py).
    taken_over: bool = False
    taken_over_noted: bool = False
    #: The head of the bot's PR when it was closed: its commits stay reachable in the
    #: closed PR, so the branch may be rebuilt from there.
    released_head: str | None = None
    #: What the row said when read: a webhook may mark the branch taken over while a run
    #: holds this object, and the run's save must not undo it (`Store.save_automation_state`).
    loaded_taken_over: bool = field(default=False, compare=False, repr=False)
    #: False for an automation the store has no row for (new, or the database was lost).
    stored: bool = field(default=False, compare=False, repr=False)

    def bot_wrote(self, sha: str | None) -> bool:
        """Is `sha` a commit this bot put on its branch?"""
        return sha is not None and sha in (self.written_sha, self.prior_sha)

    def may_move(self, sha: str | None) -> bool:
        """May the bot force its branch away from `sha`? Only from its own commit."""
        return self.bot_wrote(sha) or (sha is not None and sha == self.released_head)

    def forget_pull_request(self, *, head: str | None = None) -> None:
        """The PR is gone (merged or closed at `head`): the branch is the bot's to rebuild."""
        self.pr_number = None
        self.pr_title = self.pr_body = None
        self.pr_labels = []
        self.change_set = None
        self.taken_over = self.taken_over_noted = False
        self.released_head = head


@dataclass(frozen=True)
class Claim:
    """A repository this replica holds the lease of, for one run."""

    repository: str
    #: Run requests (webhooks, retries...) counted when claimed: more at the end of the
    #: run means someone asked again meanwhile, so it is due again at once.
    requests: int
    #: Failed runs in a row before this one (the retry backoff goes on from there).
    failures: int
    #: Another replica held the lease and let it expire (it died or hung): a takeover.
    taken_from: str | None = None
    #: What the run starts from, read as the lease was taken (None: the row is gone).
    snapshot: RunSnapshot | None = field(default=None, compare=False, repr=False)


@dataclass
class RunSnapshot:
    """What a reconcile starts from, read in one transaction (`bot.store.rows.read_snapshots`)."""

    record: RepositoryRecord
    #: The installation is suspended: nothing is to be done.
    suspended: bool
    #: The latest image of each policy, as the last complete run saw it.
    latest: dict[str, LatestRef]
    #: Each stored automation's state, by name.
    automations: dict[str, AutomationState]
    #: Image (canonical name) -> when a registry said it was pushed, for the images this
    #: repository's config names: scanned again if the scan is older.
    pushed: dict[str, float] = field(default_factory=dict)
