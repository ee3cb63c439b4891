from __future__ import annotations

from apps.cdrs import imports
from apps.core.forms import CsvUploadForm


class CdrImportForm(CsvUploadForm):
    max_bytes = imports.MAX_FILE_BYTES
    max_rows = imports.MAX_ROWS
