"""A real IMAP and POP3 server for tests: Dovecot on 127.0.0.1, from Debian's packages.

Started with a throwaway configuration in a temporary folder (its own base_dir, a
passwd-file with one user, a self-signed certificate for 127.0.0.1 made with
``cryptography``), on free ports: imaps, imap (STARTTLS) and pop3s. The user's mail is a
Maildir under the folder, so a test drops messages straight into it.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import pwd
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

USER = "news"
PASSWORD = "throwaway-mailbox-password"
START_SECONDS = 60  # on a two-core machine under load 10 or more, a start takes seconds
PORT_ATTEMPTS = 5


@dataclass
class Dovecot:
    folder: Path
    imaps_port: int
    imap_port: int
    pop3s_port: int
    cert: Path
    process: subprocess.Popen[bytes]

    @property
    def maildir(self) -> Path:
        return self.folder / "mail" / USER

    def deliver(self, name: str, message: bytes) -> None:
        path = self.maildir / "new" / f"1796000000.{name}.test"
        path.write_bytes(message)
        _own(path)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def dovecot_binary() -> str | None:
    return shutil.which("dovecot") or (
        "/usr/sbin/dovecot" if os.access("/usr/sbin/dovecot", os.X_OK) else None
    )


def missing_reason() -> str | None:
    """Why Dovecot cannot run here, or None."""
    if dovecot_binary() is None:
        return "Dovecot is not installed (apt-get install dovecot-imapd dovecot-pop3d)"
    if not Path("/usr/lib/dovecot/imap").exists() or not Path("/usr/lib/dovecot/pop3").exists():
        return (
            "Dovecot's IMAP or POP3 server is missing (apt-get install dovecot-imapd dovecot-pop3d)"
        )
    try:
        if os.getuid() == 0:  # as root, Dovecot runs its login processes as dovenull
            pwd.getpwnam("dovenull")
    except KeyError:
        return "the dovenull user Debian's Dovecot package creates is missing"
    return None


def start_dovecot(folder: Path) -> Dovecot:
    folder.mkdir(parents=True, exist_ok=True)
    # Dovecot's login processes (user dovenull) must reach the run folder.
    folder.chmod(0o755)
    cert, key = _self_signed(folder)
    owner = _mail_owner()
    for part in ("new", "cur", "tmp"):
        (folder / "mail" / USER / part).mkdir(parents=True)
    (folder / "home").mkdir()
    for path in (folder / "mail", folder / "mail" / USER, folder / "home"):
        _own(path)
    for part in ("new", "cur", "tmp"):
        _own(folder / "mail" / USER / part)
    (folder / "passwd").write_text(
        f"{USER}:{{PLAIN}}{PASSWORD}:{owner.pw_uid}:{owner.pw_gid}::{folder / 'home'}::\n"
    )
    # A port found free can be taken by another test run before Dovecot binds it (the
    # suite runs in parallel, beside other runs): then Dovecot starts again on others.
    for _ in range(PORT_ATTEMPTS):
        server = _start(folder, [_free_port() for _ in range(3)], cert, key)
        if server is not None:
            return server
    raise RuntimeError(f"no free ports for dovecot in {PORT_ATTEMPTS} attempts")


def _start(folder: Path, ports: list[int], cert: Path, key: Path) -> Dovecot | None:
    """Dovecot listening on ``ports`` (imaps, imap, pop3s); None if one was taken."""
    me = pwd.getpwuid(os.getuid())
    config = folder / "dovecot.conf"
    log = folder / "dovecot.log"
    log.unlink(missing_ok=True)
    config.write_text(
        f"""
protocols = imap pop3
listen = 127.0.0.1
base_dir = {folder / "run"}
state_dir = {folder / "state"}
log_path = {folder / "dovecot.log"}
info_log_path = {folder / "dovecot.log"}
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
auth_mechanisms = plain
mail_location = maildir:{folder / "mail"}/%u
default_internal_user = {me.pw_name}
default_login_user = {"dovenull" if os.getuid() == 0 else me.pw_name}
passdb {{
  driver = passwd-file
  args = {folder / "passwd"}
}}
userdb {{
  driver = passwd-file
  args = {folder / "passwd"}
}}
service imap-login {{
  inet_listener imap {{
    port = {ports[1]}
  }}
  inet_listener imaps {{
    port = {ports[0]}
    ssl = yes
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = 0
  }}
  inet_listener pop3s {{
    port = {ports[2]}
    ssl = yes
  }}
}}
service stats {{
  unix_listener stats-reader {{
    user = {me.pw_name}
  }}
  unix_listener stats-writer {{
    user = {me.pw_name}
  }}
}}
"""
    )
    binary = dovecot_binary()
    assert binary is not None
    process = subprocess.Popen(
        [binary, "-F", "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    server = Dovecot(folder, ports[0], ports[1], ports[2], cert, process)
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            text = log.read_text() if log.exists() else ""
            if "Address already in use" in text:
                return None
            raise RuntimeError(f"dovecot exited: {text}")
        if all(_listening(port) for port in ports):
            return server
        time.sleep(0.05)
    server.stop()
    raise RuntimeError(f"dovecot did not start listening within {START_SECONDS} s")


def _mail_owner() -> pwd.struct_passwd:
    """Dovecot refuses to read mail as root: as root, the mail belongs to ``nobody``."""
    return pwd.getpwnam("nobody") if os.getuid() == 0 else pwd.getpwuid(os.getuid())


def _own(path: Path) -> None:
    owner = _mail_owner()
    if os.getuid() == 0:
        os.chown(path, owner.pw_uid, owner.pw_gid)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def _self_signed(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path
