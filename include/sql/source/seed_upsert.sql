-- Insert or update seed rows; a row whose values did not change keeps its
-- updated_at, so an incremental extract does not see it again.
INSERT INTO {{ table | ident }} ({% for c in columns %}{{ c | ident }}{{ ", " if not loop.last }}{% endfor %})
VALUES %s
ON CONFLICT ({{ columns[0] | ident }}) DO UPDATE SET
    {% for c in columns[1:] %}{{ c | ident }} = EXCLUDED.{{ c | ident }}, {% endfor %}updated_at = now()
WHERE ({% for c in columns[1:] %}{{ table | ident }}.{{ c | ident }}{{ ", " if not loop.last }}{% endfor %})
    IS DISTINCT FROM ({% for c in columns[1:] %}EXCLUDED.{{ c | ident }}{{ ", " if not loop.last }}{% endfor %})
