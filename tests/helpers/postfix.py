"""A private Postfix instance (own config, queue and data directories) for one test.

Debian installs Postfix with "No configuration", so main.cf and master.cf are written here:
a loopback-only smtpd on an ephemeral port, no chroot, no local delivery, everything relayed to
`relayhost`. Started with `postfix -c DIR start`, stopped with `postfix -c DIR stop`.
Needs root (Postfix's master runs as root and drops to `mail_owner`).
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from helpers.net import LOCALHOST, free_port, wait_for_port, wait_until

POSTFIX = "/usr/sbin/postfix"
POSTCONF = "/usr/sbin/postconf"
POSTQUEUE = "/usr/sbin/postqueue"

# service type private unpriv chroot wakeup maxproc command
_MASTER_CF = """\
{listen} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""

# After-queue content filter: the transport to the filter, and the re-injection smtpd.
_FILTER_MASTER_CF = """\
zerohour  unix  -       -       n       -       4       smtp
  -o syslog_name=postfix/zerohour
  -o smtp_data_done_timeout=1200
  -o smtp_send_xforward_command=yes
  -o disable_dns_lookups=yes
  -o max_use=20
{reinject} inet n - n - - smtpd
  -o syslog_name=postfix/reinject
  -o content_filter=
  -o receive_override_options=no_unknown_recipient_checks,no_header_body_checks,no_milters
  -o smtpd_helo_restrictions=
  -o smtpd_client_restrictions=
  -o smtpd_sender_restrictions=
  -o smtpd_recipient_restrictions=permit_mynetworks,reject
  -o smtpd_relay_restrictions=permit_mynetworks,reject
  -o mynetworks=127.0.0.0/8
"""


def _running(pid: int) -> bool:
    """True while `pid` exists and is not a zombie (containers may not reap daemons)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return "State:\tZ" not in status


def available() -> bool:
    """Postfix binaries present and we are root (master must start as root)."""
    return Path(POSTFIX).exists() and shutil.which("postconf") is not None and os.geteuid() == 0


class PostfixInstance:
    """One private Postfix, relaying everything it accepts to `relayhost` (host:port)."""

    def __init__(
        self,
        base: Path,
        relayhost: str,
        port: int | None = None,
        content_filter: str | None = None,
        milter: str | None = None,
    ) -> None:
        """`content_filter` (host:port): after-queue filtering, the classic amavis layout.

        The public smtpd hands each queued message to the filter over SMTP; the filter sends it
        back to a second smtpd on `reinject_port` (no filter there), and Postfix relays it on.

        `milter` (host:port): before-queue filtering (`smtpd_milters`), the clamav-milter
        layout. The `reinject_port` smtpd (no milters) is where the milter's released mail goes.
        """
        self.base = base
        self.relayhost = relayhost
        self.port = port if port is not None else free_port()
        self.content_filter = content_filter
        self.milter = milter
        self.reinject_port = free_port()
        self.config_dir = base / "etc"
        self.queue_dir = base / "spool"
        # Postfix opens data_directory files with the mail_owner's rights, by absolute path, so
        # it cannot live under pytest's root-only (0700) tmp_path: a private /tmp dir instead.
        self.data_dir = Path(tempfile.mkdtemp(prefix=f"zerohour-postfix-{self.port}-"))
        self.maillog = base / "maillog"
        self._started = False

    def _env(self) -> dict[str, str]:
        return {**os.environ, "MAIL_CONFIG": str(self.config_dir)}

    def write_config(self) -> None:
        for d in (self.config_dir, self.queue_dir, self.data_dir):
            d.mkdir(parents=True, exist_ok=True)
        owner = pwd.getpwnam("postfix")
        self.data_dir.chmod(0o755)
        os.chown(self.data_dir, owner.pw_uid, owner.pw_gid)
        host, _, port = self.relayhost.rpartition(":")
        main_cf = {
            "compatibility_level": "3.6",
            "queue_directory": str(self.queue_dir),
            "data_directory": str(self.data_dir),
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "myhostname": "postfix.e2e.test",
            "mydomain": "e2e.test",
            "myorigin": "$myhostname",
            "mydestination": "",
            "local_recipient_maps": "",
            "inet_interfaces": "loopback-only",
            "inet_protocols": "ipv4",
            "mynetworks": "127.0.0.0/8",
            "relay_domains": "",
            "smtpd_relay_restrictions": "permit_mynetworks, reject_unauth_destination",
            "relayhost": f"[{host}]:{port}",
            "smtp_tls_security_level": "none",
            "smtpd_tls_security_level": "none",
            "smtputf8_enable": "no",
            "biff": "no",
            "maillog_file": str(self.maillog),
            "maillog_file_prefixes": str(self.base),
            "syslog_name": f"postfix-e2e-{self.port}",
            # Retry quickly so a gateway 4xx is retried within a test's time.
            "queue_run_delay": "2s",
            "minimal_backoff_time": "2s",
            "maximal_backoff_time": "4s",
            "smtp_connect_timeout": "5s",
            "alias_maps": "",
            "alias_database": "",
        }
        if self.milter:
            main_cf.update(
                {
                    "smtpd_milters": f"inet:{self.milter}",
                    "non_smtpd_milters": "",
                    "milter_default_action": "tempfail",  # no verdict: never pass unscanned
                    "milter_protocol": "6",
                }
            )
        (self.config_dir / "main.cf").write_text(
            "".join(f"{k} = {v}\n" for k, v in main_cf.items())
        )
        master = _MASTER_CF.format(listen=f"{LOCALHOST}:{self.port}")
        if self.content_filter:
            fhost, _, fport = self.content_filter.rpartition(":")
            master = master.replace(
                " smtpd\n",
                f" smtpd\n  -o content_filter=zerohour:[{fhost}]:{fport}\n",
                1,
            )
        if self.content_filter or self.milter:
            master += _FILTER_MASTER_CF.format(reinject=f"{LOCALHOST}:{self.reinject_port}")
        (self.config_dir / "master.cf").write_text(master)

    def postfix(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [POSTFIX, "-c", str(self.config_dir), *args],
            capture_output=True,
            text=True,
            timeout=60,
            env=self._env(),
            check=check,
        )

    def start(self) -> PostfixInstance:
        self.write_config()
        check = self.postfix("check", check=False)
        if check.returncode != 0:
            raise RuntimeError(f"postfix check failed:\n{check.stdout}{check.stderr}{self.log()}")
        started = self.postfix("start", check=False)
        if started.returncode != 0:
            raise RuntimeError(
                f"postfix start failed:\n{started.stdout}{started.stderr}{self.log()}"
            )
        self._started = True
        ports = [self.port] + ([self.reinject_port] if self.content_filter or self.milter else [])
        if not all(wait_for_port(p, timeout=30.0) for p in ports):
            self.stop()
            raise RuntimeError(f"postfix smtpd not listening on {self.port}:\n{self.log()}")
        return self

    def master_pid(self) -> int | None:
        try:
            return int((self.queue_dir / "pid" / "master.pid").read_text().split()[0])
        except (FileNotFoundError, ValueError, IndexError):
            return None

    def stop(self) -> None:
        """`postfix stop`, then wait for the master to be gone before removing its files."""
        if self._started:
            self._started = False
            pid = self.master_pid()
            self.postfix("stop", check=False)
            if pid is not None:
                wait_until(lambda: not _running(pid), timeout=20.0, interval=0.1)
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def flush(self) -> None:
        """Ask the queue manager to retry deferred mail now."""
        subprocess.run(
            [POSTQUEUE, "-c", str(self.config_dir), "-f"],
            capture_output=True,
            timeout=30,
            env=self._env(),
            check=False,
        )

    def queue_listing(self) -> str:
        done = subprocess.run(
            [POSTQUEUE, "-c", str(self.config_dir), "-p"],
            capture_output=True,
            text=True,
            timeout=30,
            env=self._env(),
            check=False,
        )
        return done.stdout + done.stderr

    def log(self) -> str:
        try:
            return self.maillog.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def __enter__(self) -> PostfixInstance:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
