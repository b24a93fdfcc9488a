"""The demo's broker: kombu's filesystem transport, made safe to read while it is written.

``make run`` without Redis passes tasks through files (``var/broker/out``). kombu writes a
message by opening its final name and then writing it, and its reader takes any file with
that name: a worker starting while the web process was writing read an empty file, and
``json.loads("")`` killed the worker, and with it the demo. Here a message is written under
a name the reader ignores and renamed into place once complete (a rename is atomic), and a
message that still cannot be read (empty, truncated, not JSON) is logged and set aside in
``processed_folder`` as ``*.unreadable`` instead of raising. Settings select this transport
(``CELERY_BROKER_TRANSPORT``) whenever the broker URL is ``filesystem://``.
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from time import monotonic

from kombu.transport import filesystem
from kombu.utils.encoding import bytes_to_str, str_to_bytes
from kombu.utils.json import dumps, loads

log = logging.getLogger(__name__)
WRITING_SUFFIX = ".writing"  # "….celery.msg.writing": not "<queue>.msg", so no reader takes it


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):
        name = f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        partial = final + WRITING_SUFFIX
        try:
            with open(partial, "wb") as f:
                f.write(str_to_bytes(dumps(payload)))
            os.replace(partial, final)
        except OSError as exc:
            raise filesystem.ChannelError(f"Cannot add file {final!r} to directory") from exc

    def _get(self, queue):
        wanted = f"{queue}.msg"
        for name in sorted(os.listdir(self.data_folder_in)):
            if name.partition(".")[2] != wanted:
                continue
            path = os.path.join(self.data_folder_in, name)
            taken = path + ".taken"
            try:
                os.replace(path, taken)  # whoever renames it first has it
                with open(taken, "rb") as f:
                    payload = f.read()
            except OSError:
                continue  # another worker took it meanwhile
            try:
                message = loads(bytes_to_str(payload))
                if not isinstance(message, dict):
                    raise ValueError("not a message object")
            except ValueError as exc:
                self._set_aside(taken, name, f"{type(exc).__name__}: {exc}" if payload else "empty file")
                continue
            if self.store_processed:
                shutil.move(taken, os.path.join(self.processed_folder, name))
            else:
                os.remove(taken)
            return message
        raise filesystem.Empty()

    def _set_aside(self, path: str, name: str, why: str) -> None:
        aside = os.path.join(self.processed_folder, name + ".unreadable")
        try:
            shutil.move(path, aside)
        except OSError:
            aside = "(could not be moved; removed)"
            try:
                os.remove(path)
            except OSError:
                pass
        log.warning("broker message %s skipped, it cannot be read (%s); kept as %s", name, why, aside)


class Transport(filesystem.Transport):
    Channel = Channel
