"""The demo's filesystem broker (ievents/broker_files.py): an empty or malformed message file
is logged and set aside, and the worker goes on to the next message (issue 21: an empty
file killed the worker at start-up, and with it `make run`)."""

import logging

from django.conf import settings
from kombu import Connection

from ievents import broker_files


def broker(tmp_path, transport="ievents.broker_files:Transport"):
    for sub in ("out", "processed"):
        (tmp_path / sub).mkdir(exist_ok=True)
    return Connection("filesystem://", transport=transport, transport_options={
        "data_folder_in": str(tmp_path / "out"), "data_folder_out": str(tmp_path / "out"),
        "processed_folder": str(tmp_path / "processed"), "store_processed": False})


def test_unreadable_messages_are_logged_and_set_aside_and_the_next_one_is_read(tmp_path, caplog):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "0_a_empty.tasks.msg").write_bytes(b"")  # a writer that had not written yet
    (tmp_path / "out" / "0_b_torn.tasks.msg").write_bytes(b'{"body": "eyJ')  # cut short
    (tmp_path / "out" / "0_c_list.tasks.msg").write_bytes(b"[1, 2]")
    with broker(tmp_path) as connection, caplog.at_level(logging.WARNING, logger="ievents.broker_files"):
        queue = connection.SimpleQueue("tasks")
        queue.put({"task": "ievents.tasks.prune_records"})
        message = queue.get(timeout=5)
        assert message.payload == {"task": "ievents.tasks.prune_records"}
        message.ack()
        queue.close()
    aside = sorted(p.name for p in (tmp_path / "processed").iterdir())
    assert aside == ["0_a_empty.tasks.msg.unreadable", "0_b_torn.tasks.msg.unreadable", "0_c_list.tasks.msg.unreadable"]
    said = caplog.text
    assert "0_a_empty.tasks.msg skipped" in said and "empty file" in said and "0_b_torn.tasks.msg skipped" in said


def test_a_message_is_never_visible_half_written(tmp_path):
    """Written under a name no reader takes, then renamed into place."""
    with broker(tmp_path) as connection:
        queue = connection.SimpleQueue("tasks")
        queue.put({"body": "x" * 10_000})
        queue.close()
    (written,) = (tmp_path / "out").iterdir()
    assert written.name.endswith(".tasks.msg") and written.stat().st_size > 10_000
    assert not any(p.name.endswith(broker_files.WRITING_SUFFIX) for p in (tmp_path / "out").iterdir())


def test_the_demo_uses_this_transport_whenever_the_broker_is_the_filesystem():
    if settings.CELERY_BROKER_URL.startswith("filesystem://"):
        assert settings.CELERY_BROKER_TRANSPORT == "ievents.broker_files:Transport"
    from ievents import settings as project_settings

    source = open(project_settings.__file__).read()
    assert 'CELERY_BROKER_TRANSPORT = "ievents.broker_files:Transport"' in source
