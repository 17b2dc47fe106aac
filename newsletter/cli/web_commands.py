"""``serve``: the subscriber web app behind a production WSGI server."""

from __future__ import annotations

import logging

import click

from newsletter.cli import State, cli, pass_state
from newsletter.cli.ctrl_c import stop_on_ctrl_c

STOPPING = (
    "Stopping: a scheduled send under way stops after its batch with the provider "
    "(Ctrl-C again to quit now)."
)

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    default=8000,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on (0: any free port).",
)
@click.option(
    "--threads",
    default=8,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Requests handled at once.",
)
@click.option(
    "--no-run-due",
    "no_run_due",
    is_flag=True,
    help="Do not send scheduled issues from this process (when cron or a systemd timer "
    "runs 'newsletter run-due' instead).",
)
@pass_state
def serve(state: State, host: str, port: int, threads: int, no_run_due: bool) -> None:
    """Serve the subscriber web app: unsubscribe and preference pages, signup with
    double opt-in, and the SendGrid event webhook. Once a minute it also sends the
    scheduled issues and automation steps that are due (as 'newsletter run-due' does),
    unless --no-run-due.

    Needs NEWSLETTER_SECRET_KEY (the key that signed the links in your mail). Put a
    TLS-terminating proxy in front of it; on Linux you can run it under gunicorn
    instead (see docs/web.md).

    \b
    Example:
      newsletter serve --port 8000
    """
    # Imported here: Flask and the store are not needed by the other commands.
    from newsletter.web import create_app, create_server, listening_on, shutdown

    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    # Waitress warns for every request that waits for a thread: under load, one line per
    # request, which costs more than the request. Busy is normal; errors still show.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    app = create_app(state.config)
    server = create_server(app, host=host, port=port, threads=threads)
    for url in listening_on(server):
        click.echo(f"Serving {state.config.name} on {url}")
    # Ctrl-C or a stop request (docker stop, systemd, kill) ends the server; a scheduled
    # send under way is let finish its batch with the provider, recorded, and stops there
    # (the next run resumes it), as run-due's does. A second signal quits at once.
    with stop_on_ctrl_c(sigterm=True, interrupt=True, message=STOPPING) as stopping:
        due_checker = None
        try:
            if not no_run_due:
                from newsletter.automations.digest import run_due_digests
                from newsletter.automations.steps import run_due_steps
                from newsletter.send.schedule import DueChecker

                also = (run_due_digests, run_due_steps)
                due_checker = DueChecker(state.config, also=also, stopping=stopping)
                due_checker.start()
            server.run()
        except KeyboardInterrupt:
            pass
        finally:
            try:
                if due_checker is not None:
                    due_checker.stop()  # waits for the batch with the provider
            finally:
                server.close()
                shutdown(app)
    click.echo("Stopped.")
