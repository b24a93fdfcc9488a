"""gunicorn's settings for this project: ``gunicorn -c gunicorn.conf.py ievents.wsgi:application``.

gunicorn also reads this file by itself when started from the project's directory.
Everything here is about what gunicorn writes to its logs; workers, binding and the access
log's destination stay on the command line (docker-compose.yml, the Dockerfile).
"""

from gunicorn.glogging import Logger

from ievents.log_redaction import add_filter_once


class RedactingGunicornLogger(Logger):
    """gunicorn's logger with secrets masked in the access log (an Ifthenpay callback's
    ``key``, an Easypay ``secret``: ``ievents.log_redaction``) and in the error log, whose
    "Error handling request" lines name the URL too."""

    def setup(self, cfg):
        super().setup(cfg)
        for log in (self.access_log, self.error_log):
            add_filter_once(log)


logger_class = RedactingGunicornLogger
