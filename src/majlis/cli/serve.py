"""`majlis serve`: a local web page to search the index and hear every quote from the second it was said."""

from __future__ import annotations

import errno
import socket
from pathlib import Path

import click

from ..errors import UsageError
from .search import DEFAULT_INDEX

LOOPBACK = ("127.0.0.1", "::1", "localhost")


def bind(host: str, port: int) -> socket.socket:
    """A listening socket, bound here so a taken port is one clear line rather than a server log."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise UsageError(f"--host {host}: cannot be resolved ({e.strerror})") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(128)
    except OSError as e:
        sock.close()
        if e.errno == errno.EADDRINUSE:
            raise UsageError(f"port {port} on {host} is already in use (choose another with --port)") from None
        if e.errno == errno.EACCES:
            raise UsageError(f"port {port} on {host}: permission denied (ports below 1024 need root; "
                             f"try --port 8000)") from None
        raise UsageError(f"cannot listen on {host}:{port}: {e.strerror}") from None
    sock.set_inheritable(True)
    return sock


@click.command("serve")
@click.option("--index", "index_dir", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_INDEX,
              show_default=True, help="Index folder.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (anything but loopback shows the index to your network, unguarded).")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option("--allowed-host", "allowed_hosts", multiple=True, metavar="NAME",
              help="Also answer requests for this host name (repeatable). Only the --host address, localhost "
                   "and 127.0.0.1 are answered otherwise: a web page elsewhere cannot reach the index through "
                   "a name of its own (DNS rebinding).")
@click.option("--edit", is_flag=True,
              help="Let the episode page correct transcripts (words, speakers, segments; saved to the transcript, "
                   "its exports and the index). Prints the link carrying the edit token every edit needs.")
@click.option("--edit-token", metavar="TOKEN", help="The edit token to use instead of a random one (implies --edit).")
@click.option("--voices", "voices_dir", type=click.Path(file_okay=False, path_type=Path),
              help="With --edit: the voice library whose names the speaker menu offers and into which a renamed "
                   "speaker's voice can be learned [default: 'voices' beside --index].")
def serve_command(index_dir: Path, host: str, port: int, allowed_hosts: tuple[str, ...], edit: bool,
                  edit_token: str | None, voices_dir: Path | None) -> None:
    """Search and listen in the browser: type a quote, filter by speaker, click a hit to hear it.

    \b
    Pages:  /search?q=QUERY&speaker=NAME   deep link to a search
            /episode/ID?t=SECONDS          a transcript, playing from SECONDS
    JSON:   /api/search?q=..   /api/episodes   /api/episodes/ID   /api/speakers

    A transcript's "audio" path is used as written when absolute; a relative one is looked up beside
    the transcript JSON, then beside the index folder, then in the current folder.
    """
    import uvicorn

    from ..search import Index
    from ..web.app import create_app

    editing = edit or edit_token is not None
    if voices_dir is not None and not editing:
        raise UsageError("--voices goes with --edit (the library the editor offers names from and learns into)")
    if edit_token is not None and len(edit_token.strip()) < 8:
        raise UsageError("--edit-token: give at least 8 characters")
    index = Index(index_dir)  # IndexMissing: one line, exit 2
    editor = None
    if editing:
        from ..voices import VoiceLibrary, default_dir
        from ..web.editor import EditSettings, finish_all, with_library

        library = VoiceLibrary(voices_dir if voices_dir is not None else default_dir(index_dir))
        library.manifest()  # a damaged library is one line now, not a page that lost its names
        editor = EditSettings(token=edit_token.strip()) if edit_token is not None else EditSettings()
        editor = with_library(editor, library)
        finished = finish_all(index)  # saves a kill interrupted: completed before anyone reads them
        if finished:
            click.echo(f"majlis: completed {finished} interrupted save{'s' * (finished != 1)}", err=True)
    episodes = len(index.episodes())
    sock = bind(host, port)
    actual_port = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    if host not in LOOPBACK:
        click.echo(f"majlis: warning: listening on {host}: anyone who can reach it can read the index (requests "
                   f"must name it as {host} or an --allowed-host)", err=True)
    click.echo(f"majlis: serving {episodes} episode{'s' * (episodes != 1)} from {index_dir} at "
               f"http://{shown}:{actual_port}/  (Ctrl+C stops)")
    from ..web.app import LOOPBACK_HOSTS

    if editor is not None:
        click.echo(f"majlis: editing is on: open http://{shown}:{actual_port}/#edit={editor.token} "
                   f"(edit token {editor.token})")
        people = len(editor.names())
        click.echo(f"majlis: voice library {library.path}: {people} voice{'s' * (people != 1)} (a renamed speaker's "
                   f"voice can be learned into it from the page)")
    app = create_app(index, allowed_hosts=[host, *LOOPBACK_HOSTS, *allowed_hosts], editor=editor)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn re-raises the Ctrl+C it shut down on; stopping a server is no error
        pass
    finally:
        sock.close()
        index.close()


commands = [serve_command]
