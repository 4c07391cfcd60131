/*
 * gen_csv.c -- fast, deterministic CSV generator for csvpipe tests and demos.
 *
 *   cc -O2 -o test/gen/gen_csv test/gen/gen_csv.c
 *   gen_csv narrow|wide ROWS [SEED] > file.csv
 *
 * narrow: id,ts,name,amount,flag
 *         id bigint 1..N, ts timestamptz ("2024-03-05 12:34:56+00"),
 *         name text (~12 chars), amount numeric(12,2) (some negative),
 *         flag boolean (t/f).
 * wide:   id, c1..c10 int4, t1..t9 text, f1..f10 float8 (~354 bytes/row).
 *
 * About 5% of text fields are quoted and contain a comma and a doubled
 * quote, e.g.  "Smith, ""Jr"" 17".  Output is a pure function of
 * (kind, ROWS, SEED): the same arguments always give the same bytes.
 * No PostgreSQL dependency; formatting is hand-rolled for speed.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <unistd.h>

/* ---- output buffer: large writes straight to fd 1 ---- */

#define OUTBUF_SIZE (1 << 20)
#define ROW_MAX 1024				/* no row is longer than this */

static char outbuf[OUTBUF_SIZE];
static size_t outlen;

static void
flush_out(void)
{
	size_t		off = 0;

	while (off < outlen)
	{
		ssize_t		n = write(1, outbuf + off, outlen - off);

		if (n < 0)
		{
			if (errno == EINTR)
				continue;
			perror("gen_csv: write");
			exit(1);
		}
		off += (size_t) n;
	}
	outlen = 0;
}

/* ---- PRNG: splitmix64 (fast, good enough, fully deterministic) ---- */

static uint64_t rng_state;

static inline uint64_t
rnd(void)
{
	uint64_t	z = (rng_state += 0x9E3779B97F4A7C15ULL);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

/* uniform-ish in [0, n) -- multiply-shift, no modulo bias worth caring about */
static inline uint32_t
rnd_below(uint32_t n)
{
	return (uint32_t) (((rnd() >> 32) * (uint64_t) n) >> 32);
}

/* ---- formatting helpers: each returns the advanced write pointer ---- */

static inline char *
put_u64(char *p, uint64_t v)
{
	char		tmp[20];
	int			n = 0;

	do
	{
		tmp[n++] = (char) ('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		*p++ = tmp[--n];
	return p;
}

static inline char *
put_i64(char *p, int64_t v)
{
	if (v < 0)
	{
		*p++ = '-';
		return put_u64(p, (uint64_t) 0 - (uint64_t) v);
	}
	return put_u64(p, (uint64_t) v);
}

static inline char *
put_2d(char *p, unsigned v)
{
	*p++ = (char) ('0' + v / 10);
	*p++ = (char) ('0' + v % 10);
	return p;
}

/* fixed-point value / 10^scale, e.g. (-1234567, 2) -> "-12345.67" */
static inline char *
put_fixed(char *p, int64_t v, int scale)
{
	uint64_t	u;
	uint64_t	div = 1;
	uint64_t	frac;
	int			i;

	if (v < 0)
	{
		*p++ = '-';
		u = (uint64_t) 0 - (uint64_t) v;
	}
	else
		u = (uint64_t) v;
	for (i = 0; i < scale; i++)
		div *= 10;
	p = put_u64(p, u / div);
	*p++ = '.';
	frac = u % div;
	for (i = scale - 1; i >= 0; i--)
	{
		p[i] = (char) ('0' + frac % 10);
		frac /= 10;
	}
	return p + scale;
}

static inline char *
put_str(char *p, const char *s, size_t len)
{
	memcpy(p, s, len);
	return p + len;
}

/* ---- name-ish text values ---- */

static const char *const surnames[] = {
	"Smith", "Jones", "Brown", "Garcia", "Miller", "Davis", "Wilson",
	"Moore", "Taylor", "Thomas", "Martin", "Lee", "Walker", "Young",
	"King", "Wright", "Lopez", "Hill", "Scott", "Green", "Adams", "Baker",
	"Nelson", "Carter", "Mitchell", "Roberts", "Turner", "Phillips",
	"Campbell", "Parker", "Evans", "Edwards"
};
static const char *const suffixes[] = {"Jr", "Sr", "III", "PhD"};

#define NSURNAMES (sizeof(surnames) / sizeof(surnames[0]))
#define NSUFFIXES (sizeof(suffixes) / sizeof(suffixes[0]))
static size_t surname_len[NSURNAMES];
static size_t suffix_len[NSUFFIXES];

/*
 * One text field of about 12 characters: "Surname_1234" normally; 5% of the
 * time a quoted field with a comma and a doubled quote:  "Smith, ""Jr"" 17".
 */
static inline char *
put_name(char *p)
{
	uint64_t	r = rnd();
	unsigned	s = (unsigned) (r % NSURNAMES);
	unsigned	pick = (unsigned) ((r >> 8) % 100);

	if (pick < 5)
	{
		unsigned	x = (unsigned) ((r >> 16) % NSUFFIXES);

		*p++ = '"';
		p = put_str(p, surnames[s], surname_len[s]);
		p = put_str(p, ", \"\"", 4);
		p = put_str(p, suffixes[x], suffix_len[x]);
		p = put_str(p, "\"\" ", 3);
		p = put_u64(p, (r >> 24) % 100);
		*p++ = '"';
	}
	else
	{
		p = put_str(p, surnames[s], surname_len[s]);
		*p++ = '_';
		/* ~12 chars in all: a 4..6 digit number */
		p = put_u64(p, 1000 + (r >> 24) % 900000);
	}
	return p;
}

/* ---- timestamps: seconds since 1970 -> "YYYY-MM-DD HH:MM:SS+00" ---- */

/* Howard Hinnant's civil_from_days */
static inline void
civil_from_days(int64_t z, int *y, unsigned *m, unsigned *d)
{
	int64_t		era;
	unsigned	doe,
				yoe,
				doy,
				mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = (unsigned) (z - era * 146097);
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int) (yoe + era * 400 + (*m <= 2));
}

static inline char *
put_ts(char *p, int64_t secs)
{
	int64_t		days = secs / 86400;
	unsigned	sod = (unsigned) (secs % 86400);
	int			y;
	unsigned	m,
				d;

	civil_from_days(days, &y, &m, &d);
	p = put_2d(p, (unsigned) y / 100);
	p = put_2d(p, (unsigned) y % 100);
	*p++ = '-';
	p = put_2d(p, m);
	*p++ = '-';
	p = put_2d(p, d);
	*p++ = ' ';
	p = put_2d(p, sod / 3600);
	*p++ = ':';
	p = put_2d(p, sod / 60 % 60);
	*p++ = ':';
	p = put_2d(p, sod % 60);
	return put_str(p, "+00", 3);
}

#define TS_BASE 1704067200LL	/* 2024-01-01 00:00:00 UTC */
#define TS_SPAN (2 * 366 * 86400U)	/* two years */

/* ---- row writers ---- */

static char *
narrow_row(char *p, uint64_t id)
{
	uint64_t	r;
	int64_t		cents;

	p = put_u64(p, id);
	*p++ = ',';
	p = put_ts(p, TS_BASE + rnd_below(TS_SPAN));
	*p++ = ',';
	p = put_name(p);
	*p++ = ',';
	r = rnd();
	/* amount: -99999.99 .. 999999.99 about 10% negative */
	if (r % 10 == 0)
		cents = -(int64_t) ((r >> 8) % 10000000);
	else
		cents = (int64_t) ((r >> 8) % 100000000);
	p = put_fixed(p, cents, 2);
	*p++ = ',';
	*p++ = (r >> 40) & 1 ? 't' : 'f';
	*p++ = '\n';
	return p;
}

static char *
wide_row(char *p, uint64_t id)
{
	int			i;

	p = put_u64(p, id);
	/* c1..c10 int4: mostly 7-9 digits, some negative, full range now and then */
	for (i = 0; i < 10; i++)
	{
		uint64_t	r = rnd();
		int64_t		v;

		*p++ = ',';
		if (r % 50 == 0)
			v = (int64_t) (int32_t) (uint32_t) (r >> 32);
		else
		{
			v = (int64_t) ((r >> 8) % 1000000000);
			if (r % 7 == 0)
				v = -v;
		}
		p = put_i64(p, v);
	}
	/* t1..t9 text */
	for (i = 0; i < 9; i++)
	{
		*p++ = ',';
		p = put_name(p);
	}
	/* f1..f10 float8: fixed-point with 6 decimals, e.g. -12345.678901 */
	for (i = 0; i < 10; i++)
	{
		uint64_t	r = rnd();
		int64_t		v = (int64_t) ((r >> 8) % 10000000000ULL);

		if (r % 5 == 0)
			v = -v;
		*p++ = ',';
		p = put_fixed(p, v, 6);
	}
	*p++ = '\n';
	return p;
}

static void
usage(void)
{
	fprintf(stderr, "usage: gen_csv narrow|wide ROWS [SEED] > file.csv\n");
	exit(2);
}

static uint64_t
parse_u64(const char *s)
{
	char	   *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end || *s == '-')
		usage();
	return (uint64_t) v;
}

int
main(int argc, char **argv)
{
	char	   *(*row) (char *, uint64_t);
	const char *header;
	uint64_t	rows,
				seed = 42,
				id;
	size_t		i;

	if (argc < 3 || argc > 4)
		usage();
	if (strcmp(argv[1], "narrow") == 0)
	{
		row = narrow_row;
		header = "id,ts,name,amount,flag\n";
	}
	else if (strcmp(argv[1], "wide") == 0)
	{
		row = wide_row;
		header = "id,c1,c2,c3,c4,c5,c6,c7,c8,c9,c10,"
			"t1,t2,t3,t4,t5,t6,t7,t8,t9,"
			"f1,f2,f3,f4,f5,f6,f7,f8,f9,f10\n";
	}
	else
		usage();
	rows = parse_u64(argv[2]);
	if (argc == 4)
		seed = parse_u64(argv[3]);

	for (i = 0; i < NSURNAMES; i++)
		surname_len[i] = strlen(surnames[i]);
	for (i = 0; i < NSUFFIXES; i++)
		suffix_len[i] = strlen(suffixes[i]);

	/* distinct streams per kind, so narrow and wide don't look alike */
	rng_state = seed * 0x2545F4914F6CDD1DULL + (row == wide_row);

	outlen = strlen(header);
	memcpy(outbuf, header, outlen);
	for (id = 1; id <= rows; id++)
	{
		if (outlen > OUTBUF_SIZE - ROW_MAX)
			flush_out();
		outlen = (size_t) (row(outbuf + outlen, id) - outbuf);
	}
	flush_out();
	return 0;
}
