-- Raw file versions already processed (loaded or rejected): never processed again.
SELECT file_id FROM etl_file_ledger
