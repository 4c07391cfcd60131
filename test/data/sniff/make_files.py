#!/usr/bin/env python3
"""make_files.py -- writes the sniff test corpus (test/t/131_sniff.pl) into
this directory.  The files are committed; rerun only to change them.

Each file is small and shaped like a real export: leading-zero codes, mixed
date formats, empty columns, a preamble, a byte order mark, semicolon, tab
and pipe files, quoted numbers, timestamps with offsets, uuids, booleans,
one column, no header, LATIN1 bytes, CRLF line ends, ' quotes.
"""
import os

here = os.path.dirname(os.path.abspath(__file__))


def write(name, text, encoding='utf-8', bom=False):
    data = text.encode(encoding)
    if bom:
        data = b'\xef\xbb\xbf' + data
    with open(os.path.join(here, name), 'wb') as f:
        f.write(data)


# zip codes (vega's zipcodes.csv shape): codes with leading zeros
rows = [("00501", "40.8154", "-73.0451", "Holtsville", "NY", "Suffolk"),
        ("00544", "40.8154", "-73.0451", "Holtsville", "NY", "Suffolk"),
        ("01001", "42.0702", "-72.6227", "Agawam", "MA", "Hampden"),
        ("01002", "42.3671", "-72.4646", "Amherst", "MA", "Hampshire"),
        ("02108", "42.3576", "-71.0684", "Boston", "MA", "Suffolk"),
        ("10001", "40.7506", "-73.9972", "New York", "NY", "New York"),
        ("30301", "33.7490", "-84.3880", "Atlanta", "GA", "Fulton"),
        ("60601", "41.8858", "-87.6181", "Chicago", "IL", "Cook"),
        ("94105", "37.7898", "-122.3942", "San Francisco", "CA", "San Francisco"),
        ("99950", "55.5420", "-131.4320", "Ketchikan", "AK", "Ketchikan Gateway")]
write("zipcodes.csv", "zip_code,latitude,longitude,city,state,county\n" +
      "".join(",".join(r) + "\n" for r in rows))

# a European spreadsheet export: ; delimiter, decimal commas, quoted ;
rows = [("1", "Müller; Söhne GmbH", "1234,50", "15.01.2024"),
        ("2", "Dupont SA", "99,90", "16.01.2024"),
        ("3", "\"Rossi \"\"Il Grande\"\" Srl\"", "7,00", "17.01.2024"),
        ("4", "García y Cía", "1500,00", "31.01.2024"),
        ("5", "Nowak sp. z o.o.", "0,99", "01.02.2024")]
write("invoices_semicolon.csv", "nr;kunde;betrag;datum\n" +
      "".join(";".join(f if f.startswith('"') or ';' not in f else '"' + f + '"' for f in r) + "\n" for r in rows))

# weather (vega's seattle-weather shape), tab separated
rows = [("2012-01-01", "0.0", "12.8", "5.0", "4.7", "drizzle"),
        ("2012-01-02", "10.9", "10.6", "2.8", "4.5", "rain"),
        ("2012-01-03", "0.8", "11.7", "7.2", "2.3", "rain"),
        ("2012-01-04", "20.3", "12.2", "5.6", "4.7", "rain"),
        ("2012-01-05", "1.3", "8.9", "2.8", "6.1", "rain"),
        ("2012-01-06", "2.5", "4.4", "2.2", "2.2", "rain"),
        ("2012-01-07", "0.0", "7.2", "2.8", "2.3", "rain"),
        ("2012-01-08", "0.0", "10.0", "2.8", "2.0", "sun"),
        ("2012-01-09", "4.3", "9.4", "5.0", "3.4", "rain"),
        ("2012-01-10", "1.0", "6.1", "0.6", "3.4", "rain")]
write("weather.tsv", "date\tprecipitation\ttemp_max\ttemp_min\twind\tweather\n" +
      "".join("\t".join(r) + "\n" for r in rows))

# stock prices after a preamble (vega's stocks.csv shape: "Jan 1 2000")
rows = [("MSFT", "Jan 1 2000", "39.81"), ("MSFT", "Feb 1 2000", "36.35"),
        ("MSFT", "Mar 1 2000", "43.22"), ("AMZN", "Jan 1 2000", "64.56"),
        ("AMZN", "Feb 1 2000", "68.87"), ("IBM", "Jan 1 2000", "100.52"),
        ("IBM", "Feb 1 2000", "92.11"), ("GOOG", "Aug 1 2004", "102.37")]
write("stocks_preamble.csv",
      "Stock prices, monthly close\nExported 2024-01-05 by quotes-tool v2\n\n"
      "symbol,date,price\n" + "".join(",".join(r) + "\n" for r in rows))

# a byte order mark and non-ASCII names
rows = [("1", "Jürgen", "Köln", "1.82"), ("2", "Zoë", "Zürich", "1.65"),
        ("3", "Łukasz", "Łódź", "1.90"), ("4", "Ines", "São Paulo", "1.70")]
write("bom.csv", "Nr,Name,Straße,Größe\n" + "".join(",".join(r) + "\n" for r in rows),
      bom=True)

# date formats: ISO, month first, day first, ISO and month first mixed
rows = [("1", "2024-01-05", "01/31/2024", "31/01/2024", "2024-01-05"),
        ("2", "2024-02-29", "02/28/2024", "28/02/2024", "01/06/2024"),
        ("3", "2023-12-31", "12/01/2023", "01/12/2023", "2024-03-01"),
        ("4", "2024-07-04", "07/04/2024", "04/07/2024", "03/15/2024")]
write("mixed_dates.csv", "id,iso,us,eu,mixed\n" +
      "".join(",".join(r) + "\n" for r in rows))

# every field quoted, numbers too
rows = [("1", "2.50", "true", "2024-01-01", "A-1"),
        ("2", "10.00", "false", "2024-01-02", "B-2"),
        ("3", "-3.75", "true", "2024-01-03", "C-3")]
write("quoted_numbers.csv", '"id","price","paid","day","ref"\n' +
      "".join(",".join('"' + f + '"' for f in r) + "\n" for r in rows))

# timestamps: local, with offsets, with Z, times of day
rows = [("1", "2024-03-05 12:34:56", "2024-03-05T12:34:56+02:00", "2024-03-05T10:34:56Z", "12:34", "08:15:30"),
        ("2", "2024-03-06 00:00:00", "2024-03-06 08:00:00-05", "2024-03-06T13:00:00Z", "23:59", "17:00:00.5"),
        ("3", "2024-03-07 23:59:59.5", "2024-03-07 08:00:00+0530", "2024-03-07T00:00:00Z", "00:00", "09:30:00")]
write("timestamps.csv", "id,local_ts,offset_ts,utc_ts,hhmm,hhmmss\n" +
      "".join(",".join(r) + "\n" for r in rows))

# uuids, booleans of several spellings, 0/1 flags, JSON
rows = [("6f1c2a9e-3b0e-4c5a-9f59-2d7f1b8e4a01", "t", "yes", "TRUE", "1", '"{""a"": 1}"'),
        ("0a4d55a8-d778-4e30-9e2c-7f2f2b1c8e02", "f", "no", "FALSE", "0", '"{""a"": 2, ""b"": [1, 2]}"'),
        ("9b2e7c11-5f3a-4b8d-8c1e-6a0d4e2f9c03", "t", "no", "true", "1", '"[1, 2, 3]"')]
write("uuids_bools.csv", "id,active,verified,flag,bit,payload\n" +
      "".join(",".join(r) + "\n" for r in rows))

# one column, with an empty line (a NULL in a one-column file)
write("one_column.csv", "email\nann@example.com\nbob@example.org\n\ncy@example.net\n")

# no header
rows = [("1", "alice", "2024-01-05", "3.5"), ("2", "bob", "2024-01-06", "4.25"),
        ("3", "carol", "2024-01-07", "10")]
write("no_header.csv", "".join(",".join(r) + "\n" for r in rows))

# empty columns: one always empty, one sometimes
rows = [("1", "x", "", "10"), ("2", "y", "", ""), ("3", "z", "", "30")]
write("empty_columns.csv", "id,code,unused,amount\n" +
      "".join(",".join(r) + "\n" for r in rows))

# pipe separated, with big numbers and exponents
rows = [("9007199254740993", "123456789012345678901234567890", "6.02e23", "1"),
        ("-9223372036854775808", "1", "1.5E-10", "40000"),
        ("42", "2", "3.0e0", "-7")]
write("numbers.psv", "big|huge|sci|medium\n" + "".join("|".join(r) + "\n" for r in rows))

# LATIN1 bytes
rows = [("1", "Café"), ("2", "Crème brûlée"), ("3", "Jalapeño")]
write("latin1.csv", "id,dish\n" + "".join(",".join(r) + "\n" for r in rows),
      encoding='latin-1')

# CRLF line ends and ' quotes (a spreadsheet of some other locale)
rows = [("1", "'Smith, John'", "'NY'"), ("2", "'Doe, Jane'", "'CA'"),
        ("3", "'O''Brien, Pat'", "'TX'")]
write("single_quotes_crlf.csv", "id,name,state\r\n" + "".join(",".join(r) + "\r\n" for r in rows))

# every data line ends with a delimiter: the header is one field short
rows = [("1", "Ann", "2.5"), ("2", "Bob", "10.0"), ("3", "Cy", "7.25")]
write("trailing_delimiter.csv", "id,name,amount\n" + "".join(",".join(r) + ",\n" for r in rows))

# an empty file
write("empty.csv", "")
