-- Why a Redshift COPY failed, one row per rejected line: SYS_LOAD_ERROR_DETAIL covers
-- provisioned clusters and Redshift Serverless (STL_LOAD_ERRORS only the former).
-- Parameters: the COPY's S3 prefix as a LIKE pattern, and when its task started (UTC).
SELECT TRIM(file_name) AS file_name, line_number, TRIM(column_name) AS column_name,
       error_code, TRIM(error_message) AS error_message
FROM sys_load_error_detail
WHERE file_name LIKE %s AND start_time >= %s
ORDER BY start_time, line_number
LIMIT 20
