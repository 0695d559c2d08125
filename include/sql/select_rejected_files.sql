-- Raw file versions that were rejected: an extract from the operational
-- database does not move its watermark past them (docs/metadata-sources.md).
SELECT file_id FROM etl_file_ledger WHERE outcome = 'rejected'
