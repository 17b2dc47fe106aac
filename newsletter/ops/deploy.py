"""``newsletter deploy systemd``: the files that run a newsletter on one Linux server.

systemd units for the web app (gunicorn, several workers), ``run-due``, ``mailbox
process``, ``flush-mail`` and the daily backup, each with its timer; a Caddyfile for
TLS in front; and an example environment file that names the secrets without holding
any. Written to a folder for review, never installed: docs/deploy.md walks through it.

Every value that goes into a unit is checked first (an absolute path of plain
characters, a user name, a host name), so no option can smuggle a directive in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from newsletter.config import DATABASE_URL_ENV, Config
from newsletter.errors import NewsletterError

_PLAIN_PATH = re.compile(r"^/[A-Za-z0-9._/+-]*$")
_USER = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
_DOMAIN = re.compile(
    r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$"
)
SECRET_KEY_ENV = "NEWSLETTER_SECRET_KEY"
DEFAULT_ENV_FILE = PurePosixPath("/etc/newsletter/newsletter.env")


class DeployError(NewsletterError):
    """An option of ``deploy systemd`` cannot go into a unit file."""


@dataclass(frozen=True)
class Server:
    """Where and how the newsletter runs on the server."""

    folder: PurePosixPath  # the newsletter folder: newsletter.yaml, issues/, backups/
    user: str
    domain: str | None = None  # None: Caddy serves plain HTTP on :80 until one is set
    venv: PurePosixPath | None = None  # default: <folder>/.venv
    env_file: PurePosixPath = DEFAULT_ENV_FILE
    workers: int = 4
    threads: int = 4  # per worker: gthread workers keep connections alive, and concurrent
    # one-click unsubscribes in one worker are written in one transaction
    port: int = 8000

    @property
    def bin(self) -> PurePosixPath:
        return (self.venv or self.folder / ".venv") / "bin"


def checked_server(
    folder: str,
    user: str,
    *,
    domain: str | None = None,
    venv: str | None = None,
    env_file: str | None = None,
    workers: int = 4,
    threads: int = 4,
    port: int = 8000,
) -> Server:
    """A :class:`Server` from command-line values, refused with the option's name if unsafe."""
    if not _USER.match(user):
        raise DeployError(f"--user {user!r} is not a user name (lowercase letters, digits, _ -)")
    if domain is not None and not _DOMAIN.match(domain):
        raise DeployError(f"--domain {domain!r} is not a host name like news.example.org")
    return Server(
        folder=_path("--dir", folder),
        user=user,
        domain=domain.lower() if domain else None,
        venv=_path("--venv", venv) if venv else None,
        env_file=_path("--env-file", env_file) if env_file else DEFAULT_ENV_FILE,
        workers=workers,
        threads=threads,
        port=port,
    )


def _path(option: str, value: str) -> PurePosixPath:
    if not _PLAIN_PATH.match(value) or "/../" in f"{value}/":
        raise DeployError(
            f"{option} {value!r} must be an absolute path of letters, digits and . _ / + -"
        )
    return PurePosixPath(value.rstrip("/") or "/")


def secret_variables(config: Config | None) -> list[str]:
    """The environment variables that hold secrets, as the config names them."""
    names = [SECRET_KEY_ENV, DATABASE_URL_ENV]
    if config is None:
        return [*names, "SENDGRID_API_KEY", "SENDGRID_WEBHOOK_PUBLIC_KEY", "SMTP_PASSWORD"]
    return [
        *names,
        config.sendgrid.api_key_env,
        config.sendgrid.webhook_public_key_env,
        config.smtp.password_env,
        config.mailbox.password_env,
    ]


def unit_files(server: Server, secrets: list[str]) -> dict[str, str]:
    """File name -> content, for the folder under review."""
    files = {"newsletter-web.service": _web_unit(server)}
    for job in _JOBS:
        files[f"newsletter-{job.name}.service"] = _job_service(server, job)
        files[f"newsletter-{job.name}.timer"] = _job_timer(job)
    files["Caddyfile"] = _caddyfile(server)
    files["newsletter.env.example"] = _environment_example(server, secrets)
    return files


def write_files(folder: Path, files: dict[str, str]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, content in files.items():
        path = folder / name
        path.write_text(content, encoding="utf-8")
        written.append(path)
    return written


_HEADER = "# Written by 'newsletter deploy systemd' for review; install as docs/deploy.md says.\n"


def _service_common(server: Server) -> str:
    return (
        f"User={server.user}\n"
        f"Group={server.user}\n"
        f"WorkingDirectory={server.folder}\n"
        f"Environment=NEWSLETTER_CONFIG={server.folder}/newsletter.yaml\n"
        f"# The secrets ({SECRET_KEY_ENV}, ...): root-owned, mode 0640, group {server.user}.\n"
        f"EnvironmentFile={server.env_file}\n"
        "NoNewPrivileges=yes\n"
        "PrivateTmp=yes\n"
        "ProtectSystem=strict\n"
        "ProtectHome=yes\n"
        f"ReadWritePaths={server.folder}\n"
    )


def _web_unit(server: Server) -> str:
    # No access log: a request's path holds a reader's signed link token.
    command = (
        f"{server.bin}/gunicorn --workers {server.workers} --threads {server.threads} "
        f"--bind 127.0.0.1:{server.port} --graceful-timeout 30 newsletter.web.wsgi:app"
    )
    return (
        _HEADER + "[Unit]\n"
        f"Description=Newsletter web app (gunicorn, {server.workers} workers of "
        f"{server.threads} threads)\n"
        "After=network-online.target postgresql.service\n"
        "Wants=network-online.target\n"
        "\n[Service]\n"
        "Type=notify\n"
        "NotifyAccess=main\n" + _service_common(server) + f"ExecStart={command}\n"
        "ExecReload=/bin/kill -s HUP $MAINPID\n"
        "KillMode=mixed\n"
        "TimeoutStopSec=40\n"
        "Restart=on-failure\n"
        "\n[Install]\n"
        "WantedBy=multi-user.target\n"
    )


@dataclass(frozen=True)
class _Job:
    name: str
    description: str
    command: str  # after <venv>/bin/newsletter
    calendar: str
    after: str = ""  # ExecStartPost, with {folder}


_JOBS = (
    _Job("run-due", "Send the newsletter issues that are due", "run-due", "*-*-* *:*:00"),
    _Job(
        "mailbox",
        "Read back bounces, complaints and mailto unsubscribes",
        "mailbox process",
        "*-*-* *:0/5:30",
    ),
    _Job(
        "flush-mail",
        "Send confirmation and manage-link mail the web app left queued",
        "flush-mail",
        "*-*-* *:0/5:45",
    ),
    _Job(
        "backup",
        "Back up the newsletter's database",
        'db backup "{folder}/backups/newsletter-$$(date +%%Y-%%m-%%d-%%H%%M).backup"',
        "*-*-* 03:17:00",
        after="/usr/bin/find {folder}/backups -name 'newsletter-*.backup' -mtime +14 -delete",
    ),
)


def _job_service(server: Server, job: _Job) -> str:
    command = job.command.format(folder=server.folder)
    if "$$(" in command:  # a shell for the date in the file name ($$: systemd's literal $)
        exec_start = (
            f"/bin/sh -c 'mkdir -p {server.folder}/backups && exec {server.bin}/newsletter "
            f"{command}'"
        )
    else:
        exec_start = f"{server.bin}/newsletter {command}"
    lines = [
        _HEADER + "[Unit]",
        f"Description={job.description}",
        "After=network-online.target postgresql.service",
        "",
        "[Service]",
        "Type=oneshot",
        _service_common(server).rstrip("\n"),
        f"ExecStart={exec_start}",
    ]
    if job.after:
        lines.append(f"ExecStartPost={job.after.format(folder=server.folder)}")
    return "\n".join(lines) + "\n"


def _job_timer(job: _Job) -> str:
    return (
        _HEADER + "[Unit]\n"
        f"Description={job.description} ({job.calendar})\n"
        "\n[Timer]\n"
        f"OnCalendar={job.calendar}\n"
        "Persistent=true\n"
        "\n[Install]\n"
        "WantedBy=timers.target\n"
    )


def _caddyfile(server: Server) -> str:
    site = server.domain or ":80"
    note = (
        "# Caddy gets and renews the TLS certificate for this name by itself.\n"
        if server.domain
        else "# Plain HTTP until a name is set: replace :80 with your domain for TLS.\n"
    )
    return (
        "# Written by 'newsletter deploy systemd' for review; install as /etc/caddy/Caddyfile.\n"
        "# One proxy in front: set web.proxy_hops: 1 in newsletter.yaml.\n" + note + f"{site} {{\n"
        "\tencode zstd gzip\n"
        "\theader -Server\n"
        f"\treverse_proxy 127.0.0.1:{server.port}\n"
        "}\n"
    )


def _environment_example(server: Server, secrets: list[str]) -> str:
    lines = [
        "# The secrets of the newsletter, one VARIABLE=value a line, read by every unit.",
        "# Copy to the EnvironmentFile path, fill in, and keep it private:",
        f"#   install -D -m 0640 -o root -g {server.user} newsletter.env.example {server.env_file}",
        f"# {SECRET_KEY_ENV}: the key that signed the links in every mail sent (keep a copy).",
        f"# {DATABASE_URL_ENV}: e.g. postgresql+psycopg://news:PASSWORD@localhost/news",
        "# Leave out what you do not use.",
    ]
    lines += [f"{name}=" for name in dict.fromkeys(secrets)]
    return "\n".join(lines) + "\n"
