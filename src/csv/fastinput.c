/*-------------------------------------------------------------------------
 *
 * fastinput.c
 *		Fast paths for the commonest CSV values of a few built-in types.
 *
 * Owns csv_fast_input(): for a value written in one plain, fixed shape it
 * computes the Datum directly, and it gives up (returns false) on anything
 * else, so the caller runs the type's input function as before.  Each
 * shape is a strict subset of what the input function accepts, and the
 * result is computed with the same functions the input function ends with
 * (date2j, tm2timestamp), so the value is the same bit for bit; errors,
 * unusual spellings, time zone names and typmods all take the input
 * function's path.
 *
 * Why: on a narrow file, timestamptz_in alone takes about a quarter of
 * COPY's time (shared PERFORMANCE.md): its general parser splits the string
 * into fields, classifies them and looks words up in tables.  The shapes
 * below are what exports and logs write:
 *
 *	timestamptz:  YYYY-MM-DD HH:MM:SS[.ffffff](+|-)HH[[:]MM]   (or 'T' for ' ')
 *	timestamp:	  YYYY-MM-DD HH:MM:SS[.ffffff]                 (or 'T' for ' ')
 *	date:		  YYYY-MM-DD
 *	boolean:	  t, f, true, false
 *
 * Without an offset a timestamptz depends on the session's TimeZone and its
 * daylight-saving rules, so it is left to timestamptz_in.  The year must
 * have four digits (0001-9999): the date order setting (DateStyle) cannot
 * change how such a date is read.
 *
 *-------------------------------------------------------------------------
 */
#include "csvfile.h"

#include "catalog/pg_type.h"
#include "datatype/timestamp.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/timestamp.h"

#define DIGIT(c)	((c) >= '0' && (c) <= '9')

/* n digits at s into *v; false if any is not a digit */
static inline bool
read_digits(const char *s, int n, int *v)
{
	int			r = 0;

	for (int i = 0; i < n; i++)
	{
		if (!DIGIT(s[i]))
			return false;
		r = r * 10 + (s[i] - '0');
	}
	*v = r;
	return true;
}

/* YYYY-MM-DD at s (10 bytes), a valid calendar date */
static bool
read_date(const char *s, struct pg_tm *tm)
{
	if (!read_digits(s, 4, &tm->tm_year) || s[4] != '-' ||
		!read_digits(s + 5, 2, &tm->tm_mon) || s[7] != '-' ||
		!read_digits(s + 8, 2, &tm->tm_mday))
		return false;
	if (tm->tm_year < 1 || tm->tm_mon < 1 || tm->tm_mon > MONTHS_PER_YEAR ||
		tm->tm_mday < 1 ||
		tm->tm_mday > day_tab[isleap(tm->tm_year) ? 1 : 0][tm->tm_mon - 1])
		return false;
	return true;
}

/*
 * " HH:MM:SS[.ffffff]" at s (after the date): fills tm's time and *fsec,
 * returns the position after it, or NULL.
 */
static const char *
read_time(const char *s, struct pg_tm *tm, fsec_t *fsec)
{
	if (s[0] != ' ' && s[0] != 'T')
		return NULL;
	if (!read_digits(s + 1, 2, &tm->tm_hour) || s[3] != ':' ||
		!read_digits(s + 4, 2, &tm->tm_min) || s[6] != ':' ||
		!read_digits(s + 7, 2, &tm->tm_sec))
		return NULL;
	/* 24:00:00 and leap seconds are the input function's business */
	if (tm->tm_hour > 23 || tm->tm_min > 59 || tm->tm_sec > 59)
		return NULL;
	s += 9;
	*fsec = 0;
	if (*s == '.')
	{
		int			ndigits = 0;
		int			f = 0;

		s++;
		while (DIGIT(*s) && ndigits < 6)
		{
			f = f * 10 + (*s - '0');
			s++;
			ndigits++;
		}
		/* more than microseconds would be rounded: not here */
		if (ndigits == 0 || DIGIT(*s))
			return NULL;
		while (ndigits++ < 6)
			f *= 10;
		*fsec = f;
	}
	return s;
}

/* (+|-)HH[[:]MM] to the end of the string, as DecodeTimezone returns it */
static bool
read_offset(const char *s, int *tz)
{
	int			hr;
	int			min = 0;
	int			secs;

	if (s[0] != '+' && s[0] != '-')
		return false;
	if (!read_digits(s + 1, 2, &hr))
		return false;
	if (s[3] == ':')
	{
		if (!read_digits(s + 4, 2, &min) || s[6] != '\0')
			return false;
	}
	else if (s[3] != '\0')
	{
		if (!read_digits(s + 3, 2, &min) || s[5] != '\0')
			return false;
	}
	if (hr > MAX_TZDISP_HOUR || min >= MINS_PER_HOUR)
		return false;
	secs = (hr * MINS_PER_HOUR + min) * SECS_PER_MINUTE;
	/* DecodeTimezone's sign convention: seconds west of UTC */
	*tz = (s[0] == '-') ? secs : -secs;
	return true;
}

CsvFastInput
csv_fast_input_kind(Oid typid, int32 typmod)
{
	switch (typid)
	{
		case TIMESTAMPTZOID:
			return typmod < 0 ? CSV_FAST_TIMESTAMPTZ : CSV_FAST_NONE;
		case TIMESTAMPOID:
			return typmod < 0 ? CSV_FAST_TIMESTAMP : CSV_FAST_NONE;
		case DATEOID:
			return CSV_FAST_DATE;
		case BOOLOID:
			return CSV_FAST_BOOL;
		default:
			return CSV_FAST_NONE;
	}
}

/*
 * The Datum for s, a NUL-terminated field, when it has one of the shapes
 * above; false otherwise (the caller then runs the input function).
 */
bool
csv_fast_input(CsvFastInput kind, const char *s, Datum *result)
{
	struct pg_tm tm;
	fsec_t		fsec;
	int			tz;
	Timestamp	ts;
	const char *rest;

	memset(&tm, 0, sizeof(tm));
	switch (kind)
	{
		case CSV_FAST_BOOL:
			if ((s[0] == 't' && (s[1] == '\0' || strcmp(s + 1, "rue") == 0)))
				*result = BoolGetDatum(true);
			else if (s[0] == 'f' && (s[1] == '\0' || strcmp(s + 1, "alse") == 0))
				*result = BoolGetDatum(false);
			else
				return false;
			return true;

		case CSV_FAST_DATE:
			if (!read_date(s, &tm) || s[10] != '\0')
				return false;
			*result = DateADTGetDatum(date2j(tm.tm_year, tm.tm_mon, tm.tm_mday) -
									  POSTGRES_EPOCH_JDATE);
			return true;

		case CSV_FAST_TIMESTAMP:
		case CSV_FAST_TIMESTAMPTZ:
			if (!read_date(s, &tm) || (rest = read_time(s + 10, &tm, &fsec)) == NULL)
				return false;
			if (kind == CSV_FAST_TIMESTAMP)
			{
				if (*rest != '\0' || tm2timestamp(&tm, fsec, NULL, &ts) != 0)
					return false;
				*result = TimestampGetDatum(ts);
			}
			else
			{
				if (!read_offset(rest, &tz) || tm2timestamp(&tm, fsec, &tz, &ts) != 0)
					return false;
				*result = TimestampTzGetDatum(ts);
			}
			return true;

		case CSV_FAST_NONE:
			break;
	}
	return false;
}
