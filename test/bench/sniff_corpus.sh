#!/usr/bin/env bash
# test/bench/sniff_corpus.sh -- csvpipe.sniff against third-party CSV corpora.
#
#   bash test/bench/sniff_corpus.sh
#
# Not part of `make test`: it is a report (doc/benchmarks.md quotes
# its figures).  It builds and installs the extension, starts a private
# cluster, and sniffs every file of every corpus under CORPUS (default
# /work/shared/corpus: Pollock, its survey sample, DuckDB's CSV test files;
# each has a manifest.jsonl with the dialect the file is meant to be read
# with, and the Pollock ones a parameters file with header and preamble
# lines and a clean/ copy of the table the file is meant to load as).  The
# files are read in place, never copied.  It prints, per corpus and in all:
#
#   options   how often sniff's delimiter, quote, escape and encoding equal
#             the manifest's (escape NULL = the quote, encoding NULL =
#             UTF8), and for Pollock header (header_lines > 0) and skip_rows
#             (preamble_lines + header_lines - 1); a file sniff fails on
#             counts as a miss for every option
#   rows      how often csvpipe.read_text with what sniff found (dialect,
#             header, skip_rows, encoding) returns exactly the reference
#             rows: Pollock: the clean/ table (COPY, HEADER when the file
#             has one); DuckDB: COPY FROM with the manifest's dialect and
#             sniff's header decision (the corpus does not say which files
#             have one: the figure measures the dialect; files COPY refuses
#             have no reference).  NULL and
#             '' compare equal (clean/ quotes every field).  "base" is the
#             same with the manifest's own dialect instead of sniff's: what
#             csvpipe reads when told the dialect, the ceiling for sniff.
#   typed     how often csvpipe.read with sniff's dialect, null_string and
#             column list (its types) reads the whole file without an error,
#             and how many of those files' columns sniff typed other than text
#
# Environment:
#   CORPUS=/work/shared/corpus   REPORT=file (one line per file: what differed)
#   MATCH=regex (only files whose corpus/path matches)   TIMEOUT=20s per step
#   KEEP=1  SKIP_BUILD=1  BENCH_TMPDIR=/tmp  PG_CONFIG=pg_config
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
BENCH_NAME=bench-sniff-corpus
# shellcheck source=test/bench/lib.sh
. "$REPO/test/bench/lib.sh"

CORPUS=${CORPUS:-/work/shared/corpus}
MATCH=${MATCH:-}
TIMEOUT=${TIMEOUT:-20s}
REPORT=${REPORT:-}

[[ -r $CORPUS/README.md ]] || die "no corpus at $CORPUS (set CORPUS)"

bench_build
bench_cluster sniffc 55471
bench_conf "sniff_corpus.sh"
cat >>"$PGDATA/postgresql.conf" <<EOF
datestyle = 'iso, mdy'
timezone = 'UTC'
jit = off
log_min_messages = warning
EOF
bench_start

sql -c "CREATE EXTENSION csvpipe" >/dev/null

# ---------------------------------------------------------------- the files
# manifest lines, with the Pollock parameters beside them
sql <<EOF >/dev/null
CREATE TABLE file (
    corpus text, name text, path text,
    delimiter text, quote text, escape text, encoding text,
    clean text, header_lines int, preamble_lines int);
EOF
for m in "$CORPUS"/*/manifest.jsonl; do
    cdir=$(dirname "$m")
    corpus=$(basename "$cdir")
    sql -v m="$m" -v cdir="$cdir" -v corpus="$corpus" <<'EOF' >/dev/null
INSERT INTO file
SELECT :'corpus', j->>'file', :'cdir' || '/' || (j->>'file'),
       j->>'delimiter', j->>'quote', j->>'escape', j->>'encoding',
       CASE WHEN j ? 'expected' THEN :'cdir' || '/' || (j->>'expected') END,
       NULL, NULL
  FROM (SELECT line::jsonb AS j
          FROM regexp_split_to_table(pg_read_file(:'m'), E'\n') AS line
         WHERE line <> '') l;
EOF
done
# Pollock parameters: header and preamble lines (pg_read_file needs a superuser: the script's)
sql <<'EOF' >/dev/null
UPDATE file f
   SET header_lines = (p->>'header_lines')::int,
       preamble_lines = (p->>'preamble_lines')::int
  FROM (SELECT name, corpus,
               pg_read_file(regexp_replace(path, '/csv/([^/]*)$', '/parameters/\1_parameters.json'),
                            0, 100000, true)::jsonb AS p
          FROM file WHERE corpus LIKE 'pollock%') x
 WHERE x.name = f.name AND x.corpus = f.corpus AND x.p IS NOT NULL;
EOF
if [[ -n $MATCH ]]; then
    sql -v re="$MATCH" <<<"DELETE FROM file WHERE corpus || '/' || name !~ :'re'" >/dev/null
fi
nfiles=$(sql -c "SELECT count(*) FROM file")
log "$nfiles files"

# ------------------------------------------------------------ one file each
sql <<'EOF' >/dev/null
CREATE TABLE result (
    corpus text, name text,
    sniff_error text,
    delimiter_eq bool, quote_eq bool, escape_eq bool, encoding_eq bool,
    header_eq bool, skip_eq bool,
    ref_rows bigint, ref_error text,
    base_eq bool, rows_eq bool, typed_ok bool, typed_error text,
    ncols int, ntyped int, found text);

-- every row of a read as one text, in file order: fields joined by US, NULL = ''
CREATE FUNCTION rows_text(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE r text;
BEGIN
    EXECUTE 'SELECT count(*) || '':'' || coalesce(md5(string_agg(array_to_string(f, E''\x1f'', ''''), E''\x1e'' ORDER BY n)), '''') FROM (' || q || ') s(n, f)' INTO r;
    RETURN r;
END $$;

-- COPY of a file into text columns (as many as its first record has), as rows_text
CREATE FUNCTION copy_text(p text, opts text, ncols int) RETURNS text LANGUAGE plpgsql AS $$
DECLARE cols text; r text;
BEGIN
    SELECT string_agg(format('c%s text', i), ', ') INTO cols FROM generate_series(1, ncols) i;
    SET LOCAL client_min_messages = warning;
    EXECUTE format('DROP TABLE IF EXISTS pg_temp.ref; CREATE TEMP TABLE ref (n bigserial, %s)', cols);
    EXECUTE format('COPY pg_temp.ref (%s) FROM %L WITH (%s)',
                   (SELECT string_agg(format('c%s', i), ', ') FROM generate_series(1, ncols) i), p, opts);
    EXECUTE format('SELECT rows_text(''SELECT n, ARRAY[%s] FROM pg_temp.ref'')',
                   (SELECT string_agg(format('c%s', i), ', ') FROM generate_series(1, ncols) i)) INTO r;
    RETURN r;
END $$;

CREATE FUNCTION lit(s text) RETURNS text LANGUAGE sql IMMUTABLE RETURN
    CASE WHEN s IS NULL THEN 'NULL' ELSE quote_literal(s) END;

CREATE FUNCTION one(f file) RETURNS result LANGUAGE plpgsql AS $$
DECLARE
    r result;
    s csvpipe.sniff_result;
    ncols int;
    ref text;
    got text;
    opts text;
    m_escape text := coalesce(f.escape, f.quote);
    m_enc text := coalesce(f.encoding, 'UTF8');
    want_header bool;
    want_skip bigint;
BEGIN
    r.corpus := f.corpus;
    r.name := f.name;
    IF f.header_lines IS NOT NULL THEN
        want_header := f.header_lines > 0;
        want_skip := f.preamble_lines + greatest(f.header_lines - 1, 0);
    END IF;

    BEGIN
        s := csvpipe.sniff(f.path);
    EXCEPTION WHEN OTHERS THEN
        r.sniff_error := SQLSTATE || ' ' || SQLERRM;
    END;
    IF r.sniff_error IS NULL THEN
        r.delimiter_eq := s.delimiter = f.delimiter;
        r.quote_eq := s.quote = f.quote;
        r.escape_eq := s.escape = m_escape;
        r.encoding_eq := s.encoding = m_enc;
        r.header_eq := s.header = want_header;
        r.skip_eq := s.skip_rows = want_skip;
        r.ncols := cardinality(s.columns);
        r.ntyped := (SELECT count(*) FROM unnest(s.types) t WHERE t <> 'text');
        r.found := format('%s %s %s %s header=%s skip=%s null=%s cols=%s types=%s', lit(s.delimiter), lit(s.quote),
                          lit(s.escape), s.encoding, s.header, s.skip_rows, lit(s.null_string),
                          cardinality(s.columns), array_to_string(s.types, ','));
    ELSE
        r.delimiter_eq := false; r.quote_eq := false; r.escape_eq := false;
        r.encoding_eq := false;
        r.header_eq := CASE WHEN want_header IS NOT NULL THEN false END;
        r.skip_eq := CASE WHEN want_skip IS NOT NULL THEN false END;
    END IF;

    -- the reference rows
    BEGIN
        IF f.clean IS NOT NULL THEN
            SELECT cardinality(fields) INTO ncols
              FROM csvpipe.read_text(f.clean, header => false, cache => false) LIMIT 1;
            ref := copy_text(f.clean, format('FORMAT csv, HEADER %s',
                                             CASE WHEN f.header_lines > 0 THEN 'true' ELSE 'false' END),
                             coalesce(ncols, 1));
        ELSE
            SELECT cardinality(fields) INTO ncols
              FROM csvpipe.read_text(f.path, delimiter => f.delimiter, quote => f.quote,
                                     header => false, encoding => m_enc, cache => false) LIMIT 1;
            -- no known header: sniff's decision (true if it failed), so
            -- that the figure measures the dialect
            want_header := coalesce(s.header, true);
            ref := copy_text(f.path, format('FORMAT csv, HEADER %s, DELIMITER %L, QUOTE %L, ESCAPE %L, ENCODING %L',
                                            CASE WHEN want_header THEN 'true' ELSE 'false' END,
                                            f.delimiter, f.quote, m_escape, m_enc), coalesce(ncols, 1));
        END IF;
        r.ref_rows := split_part(ref, ':', 1)::bigint;
    EXCEPTION WHEN OTHERS THEN
        r.ref_error := SQLSTATE || ' ' || SQLERRM;
        ref := NULL;
    END;

    IF ref IS NOT NULL THEN
        -- csvpipe told the manifest's dialect (and the true header/preamble where known)
        BEGIN
            got := rows_text(format('SELECT line_no, fields FROM csvpipe.read_text(%L, delimiter => %L, quote => %L, escape => %L, header => %L, skip_rows => %s, encoding => %L, cache => false)',
                             f.path, f.delimiter, f.quote, m_escape,
                             coalesce(want_header, true)::text, coalesce(want_skip, 0), m_enc));
            r.base_eq := got = ref;
        EXCEPTION WHEN OTHERS THEN
            r.base_eq := false;
        END;
        -- csvpipe told what sniff found
        IF r.sniff_error IS NULL THEN
            BEGIN
                got := rows_text(format('SELECT line_no, fields FROM csvpipe.read_text(%L, delimiter => %L, quote => %L, escape => %L, header => %L, skip_rows => %s, encoding => %L, cache => false)',
                                 f.path, s.delimiter, s.quote, s.escape, s.header::text, s.skip_rows, s.encoding));
                r.rows_eq := got = ref;
            EXCEPTION WHEN OTHERS THEN
                r.rows_eq := false;
            END;
        ELSE
            r.rows_eq := false;
        END IF;
    END IF;

    -- the typed read of the whole file
    IF r.sniff_error IS NULL AND cardinality(s.columns) = 0 THEN
        r.typed_ok := false;
        r.typed_error := 'no columns (' || array_to_string(s.notes, '; ') || ')';
    ELSIF r.sniff_error IS NULL THEN
        BEGIN
            EXECUTE format('SELECT count(*) FROM csvpipe.read(%L, delimiter => %L, quote => %L, escape => %L, header => %L, skip_rows => %s, encoding => %L, null_string => %L, cache => false) AS t(%s)',
                           f.path, s.delimiter, s.quote, s.escape, s.header::text, s.skip_rows, s.encoding, s.null_string, s.column_list);
            r.typed_ok := true;
        EXCEPTION WHEN OTHERS THEN
            r.typed_ok := false;
            r.typed_error := SQLSTATE || ' ' || SQLERRM;
        END;
    ELSE
        r.typed_ok := false;
    END IF;
    RETURN r;
END $$;
EOF

log "sniffing $nfiles files"
start=$(date +%s.%N)
# one statement a file, each under statement_timeout; a file whose step
# fails or times out is recorded as such afterwards
{
    echo "SET statement_timeout = '$TIMEOUT';"
    sql -c "SELECT format('INSERT INTO result SELECT (one(f)).* FROM file f WHERE corpus = %L AND name = %L;', corpus, name) FROM file ORDER BY corpus, name"
} | "${PSQL[@]}" -v ON_ERROR_STOP=0 >/dev/null 2>"$WORK/steps.err" || true
sql -c "INSERT INTO result (corpus, name, sniff_error)
        SELECT corpus, name, 'step failed or timed out' FROM file f
         WHERE NOT EXISTS (SELECT 1 FROM result r WHERE r.corpus = f.corpus AND r.name = f.name)" >/dev/null
end=$(date +%s.%N)
log "done in $(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f s", b - a }')"

# ----------------------------------------------------------------- report
# the sets reported: each corpus, DuckDB without its fuzzer cases (afl/,
# *fuzz*: random bytes, whose manifest dialect is a guess too), and all
sql <<'EOF' >/dev/null
CREATE VIEW sets AS
    SELECT corpus AS set, * FROM result
    UNION ALL
    SELECT 'duckdb, no fuzz cases', * FROM result
     WHERE corpus = 'duckdb' AND name !~ '(^|/)afl/|fuzz'
    UNION ALL
    SELECT 'all', * FROM result;
EOF
pct() { echo "round(100.0 * count(*) FILTER (WHERE $1) / nullif(count(*) FILTER (WHERE $1 IS NOT NULL), 0), 1) || '% (' || count(*) FILTER (WHERE $1) || '/' || count(*) FILTER (WHERE $1 IS NOT NULL) || ')'"; }
echo
echo "csvpipe.sniff against $CORPUS ($nfiles files)"
echo
"${PSQL[@]}" -P footer=off -c "
SELECT set, count(*) AS files,
       count(*) FILTER (WHERE sniff_error IS NOT NULL) AS sniff_errors,
       $(pct delimiter_eq) AS delimiter,
       $(pct quote_eq) AS quote,
       $(pct escape_eq) AS escape,
       $(pct encoding_eq) AS encoding,
       $(pct header_eq) AS header,
       $(pct skip_eq) AS skip_rows
  FROM sets GROUP BY set ORDER BY set = 'all', set;"
echo
"${PSQL[@]}" -P footer=off -c "
SELECT set,
       count(*) FILTER (WHERE ref_rows IS NOT NULL) AS with_reference,
       $(pct base_eq) AS \"rows: manifest dialect\",
       $(pct rows_eq) AS \"rows: sniffed dialect\",
       round(100.0 * count(*) FILTER (WHERE rows_eq AND base_eq) / nullif(count(*) FILTER (WHERE base_eq), 0), 1) || '% (' ||
         count(*) FILTER (WHERE rows_eq AND base_eq) || '/' || count(*) FILTER (WHERE base_eq) || ')' AS \"sniffed, of base\",
       $(pct typed_ok) AS \"typed read ok\",
       sum(ntyped) FILTER (WHERE typed_ok) || '/' || sum(ncols) FILTER (WHERE typed_ok) AS \"not text, of their columns\"
  FROM sets GROUP BY set ORDER BY set = 'all', set;"

if [[ -n $REPORT ]]; then
    sql -F $'\t' -A -c "
SELECT corpus || '/' || name,
       concat_ws(' ',
         CASE WHEN sniff_error IS NOT NULL THEN 'sniff: ' || sniff_error END,
         CASE WHEN NOT delimiter_eq THEN 'delimiter' END,
         CASE WHEN NOT quote_eq THEN 'quote' END,
         CASE WHEN NOT escape_eq THEN 'escape' END,
         CASE WHEN NOT encoding_eq THEN 'encoding' END,
         CASE WHEN NOT header_eq THEN 'header' END,
         CASE WHEN NOT skip_eq THEN 'skip' END,
         CASE WHEN base_eq AND NOT rows_eq THEN 'rows' END,
         CASE WHEN NOT typed_ok THEN 'typed: ' || typed_error END),
       found
  FROM result ORDER BY 1" >"$REPORT"
    log "per-file report in $REPORT"
fi
