"""The API's JSON parser: DRF's, plus a clean 400 for a body nested too deeply to parse.

``json.loads('[' * 5000 + ']' * 5000)`` raises ``RecursionError``, which DRF's parser does
not catch: any API key holder could turn a request into a 500. It is a parse error.
"""

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


class SafeJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - the body is nested too deeply.") from None
