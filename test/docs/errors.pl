#!/usr/bin/env perl
# test/docs/errors.pl — every SQLSTATE that docs/errors.md lists is raised
# by some test, and every SQLSTATE the tests show the extension raising is
# listed there.
#
# The codes of docs/errors.md are those in backquotes in the first cell of
# each row of the table under "## Every SQLSTATE" (a row may list several:
# `23503`, `23514`, `23502`).  The tests' codes are read where the tests
# print or assert them, never from any five characters that look like one:
#
#   pg_regress and isolation outputs (expected/*.out, tmp/regress/results/,
#   test/isolation/expected/*.out, tmp/isolation/results/):
#     - the column named "state" or "sqlstate" of a psql table, as
#       pg_temp.err (test/regress/helpers.psql) returns it, and any cell
#       "CODE: message" of a psql table;
#     - "ERROR:  CODE: message", as psql prints with VERBOSITY verbose and the
#       isolation specs' iso.run() raises; "ERROR:  CODE" (VERBOSITY sqlstate);
#     - "SQLSTATE: CODE" or "SQLSTATE CODE" on a line that is not a comment;
#   pgTAP files (test/pgtap/*.sql, *.psql): the error code of throws_ok(sql,
#     'CODE', ...), the second argument;
#   the other layers' scripts and logs (test/log, test/dump, test/cron,
#     test/ha; tmp/log.log, tmp/dump.log, tmp/cron.log, tmp/ha.log):
#     "ERROR:  CODE: message", "SQLSTATE: CODE" or "SQLSTATE CODE".
#
# A code counts only if its class (the first two characters) is a class of
# errors that PostgreSQL defines (not 00 success, 01 warning, 02 no data).
# Prints "ok - 22007 is raised by sql/calculate.sql" or "not ok - ..." per
# code of errors.md, then "ok -"/"not ok -" per code the tests raise that
# errors.md does not list; exits 1 if any line is "not ok".  Run from the
# top of the repository.
#
# An unlisted code fails rather than warns: errors.md is the contract of the
# codes a caller may receive, and a test that shows a caller a code is proof
# that one can.  A code a test provokes from PostgreSQL apart from the
# extension (plain SQL that the test itself gets wrong on purpose) goes in
# %NOT_RAISED_BY_EXTENSION below, with its reason.
use strict;
use warnings;

my $ERRORS = 'docs/errors.md';

# Codes a test shows that are PostgreSQL's answer to the test itself, not
# the extension's to a caller: none so far.  Each needs its reason.
my %NOT_RAISED_BY_EXTENSION = (
);

# The SQLSTATE classes of errors in PostgreSQL 15 (src/backend/utils/errcodes.txt;
# 00 success, 01 warning and 02 no data are not errors).
my %CLASS = map { $_ => 1 } qw(03 08 09 0A 0B 0F 0L 0P 0Z 20 21 22 23 24 25 26 27 28
	2B 2D 2F 34 38 39 3B 3D 3F 40 42 44 53 54 55 57 58 72 F0 HV P0 XX);
sub sqlstate { my $c = shift; return $c =~ /^[0-9A-Z]{5}$/ && $CLASS{substr($c, 0, 2)}; }

my $failed = 0;
sub report {
	my ($ok, $text) = @_;
	print(($ok ? 'ok' : 'not ok') . " - $text\n");
	$failed = 1 unless $ok;
}

sub slurp {
	my $file = shift;
	open(my $fh, '<', $file) or die "cannot read $file: $!\n";
	local $/;
	my $text = <$fh>;
	close $fh;
	return $text;
}

# 1. The codes of docs/errors.md, in the order of its table.
my (@listed, %listed);
{
	my ($in, $rows, $line) = (0, 0, 0);
	for (split /\n/, slurp($ERRORS)) {
		$line++;
		if (/^## /) { $in = /^## Every SQLSTATE\s*$/ ? 1 : 0; next; }
		next unless $in && /^\|/;
		next if /^\|\s*-/;                       # | --- | --- |
		my ($first) = /^\|([^|]*)\|/;
		next if defined $first && $first =~ /^\s*SQLSTATE\s*$/;   # the header
		$rows++;
		my @codes = grep { /^[0-9A-Z]{5}$/ } ($first // '') =~ /`([^`]*)`/g;
		if (!@codes) {
			report(0, "$ERRORS line $line: no SQLSTATE in backquotes in the first cell: $_");
			next;
		}
		for my $c (@codes) {
			push @listed, $c unless $listed{$c}++;
		}
	}
	report(0, "$ERRORS has no table under \"## Every SQLSTATE\"") unless $rows;
}

# 2. Where the tests raise each code: code -> { test => 1 }.
my %raised;
sub saw { my ($code, $test) = @_; $raised{$code}{$test} = 1 if sqlstate($code); }

# "ERROR:  CODE: ...", "ERROR:  CODE", "SQLSTATE: CODE" in one line.
sub line_codes {
	my ($line, $test) = @_;
	return if $line =~ /^\s*(--|#)/;
	saw($1, $test) if $line =~ /^(?:ERROR|FATAL|PANIC):  (?:SQLSTATE:? ?)?([0-9A-Z]{5})(?::|\s*$)/;
	saw($1, $test) while $line =~ /\bSQLSTATE:? ([0-9A-Z]{5})\b/g;
}

# A psql output: the "state" column of its tables, its error lines.
sub psql_output {
	my ($file, $test) = @_;
	my @lines = split /\n/, slurp($file);
	my ($table, @cols) = (0);    # in a table; the indexes of its state columns
	for my $i (0 .. $#lines) {
		my $l = $lines[$i];
		if ($l =~ /^-+(\+-+)*$/ && $i > 0) {         # the rule under a header
			my @names = map { s/^\s+|\s+$//gr } split /\|/, $lines[$i - 1], -1;
			@cols = grep { $names[$_] =~ /^(state|sqlstate)$/ } 0 .. $#names;
			$table = 1;
			next;
		}
		if ($table) {
			if ($l =~ /^\(\d+ rows?\)$/ || $l eq '') { ($table, @cols) = (0); next; }
			my @cells = map { s/^\s+|\s+$//gr } split /\|/, $l, -1;
			saw($cells[$_] // '', $test) for @cols;
			/^([0-9A-Z]{5}): \S/ and saw($1, $test) for @cells;   # "CODE: message"
			next;
		}
		if ($l =~ /^(state|sqlstate)\s+\|\s+([0-9A-Z]{5})\s*$/) {   # \x output
			saw($2, $test);
			next;
		}
		line_codes($l, $test);
	}
}

for my $f (sort glob('expected/*.out'), sort glob('tmp/regress/results/*.out')) {
	my ($name) = $f =~ m{([^/]+)\.out$};
	psql_output($f, "sql/$name.sql");
}
for my $f (sort glob('test/isolation/expected/*.out'), sort glob('tmp/isolation/results/*.out')) {
	my ($name) = $f =~ m{([^/]+)\.out$};
	$name =~ s/_\d+$//;                              # alternative outputs
	psql_output($f, "test/isolation/specs/$name.spec");
}

# pgTAP: throws_ok(sql, 'CODE', ...).  The first argument is skipped as SQL:
# quoted strings, dollar quotes and parentheses.
sub skip_argument {
	my ($s, $p) = @_;
	my $depth = 0;
	while ($p < length $s) {
		my $c = substr($s, $p, 1);
		if ($c eq "'") {
			$p++;
			while ($p < length $s) {
				if (substr($s, $p, 1) eq "'") {
					last unless substr($s, $p + 1, 1) eq "'";
					$p++;
				}
				$p++;
			}
			$p++;
		} elsif (substr($s, $p) =~ /^(\$[A-Za-z_]*\$)/) {
			my $tag = $1;
			my $end = index($s, $tag, $p + length $tag);
			return length $s if $end < 0;
			$p = $end + length $tag;
		} elsif ($c eq '(') {
			$depth++; $p++;
		} elsif ($c eq ')') {
			return $p if $depth == 0;
			$depth--; $p++;
		} elsif ($c eq ',' && $depth == 0) {
			return $p;
		} else {
			$p++;
		}
	}
	return $p;
}
for my $f (sort(glob('test/pgtap/*.sql'), glob('test/pgtap/*.psql'))) {
	my $s = slurp($f);
	while ($s =~ /\bthrows_ok\s*\(/g) {
		my $after = pos($s);
		my $p = skip_argument($s, $after);
		saw($1, $f) if substr($s, $p) =~ /^,\s*'([0-9A-Z]{5})'\s*(?:::\s*\w+\s*)?[,)]/;
		pos($s) = $after;
	}
}

# The other layers: their scripts and what they logged.
for my $f (sort(glob('test/log/*'), glob('test/dump/*'), glob('test/cron/*'), glob('test/ha/*'),
		grep { -f } qw(tmp/log.log tmp/dump.log tmp/cron.log tmp/ha.log))) {
	next unless -f $f && -T $f;
	line_codes($_, $f) for split /\n/, slurp($f);
}

# 3. The report.
sub rank { my $t = shift; return ($t =~ m{^sql/} ? 0 : $t =~ m{^test/pgtap/} ? 1 : $t =~ m{^test/isolation/} ? 2 : 3) . $t; }
sub where {
	my @tests = sort { rank($a) cmp rank($b) } keys %{ $raised{ $_[0] } };
	my $more = @tests - 1;
	return $tests[0] . ($more ? " and $more other test" . ($more > 1 ? 's' : '') : '');
}
for my $c (@listed) {
	if ($raised{$c}) {
		report(1, "$c is raised by " . where($c));
	} else {
		report(0, "$c is listed in $ERRORS but no test raises it (no pg_regress or isolation output"
			. " shows it, no pgTAP throws_ok expects it)");
	}
}
for my $c (sort keys %raised) {
	next if $listed{$c};
	if ($NOT_RAISED_BY_EXTENSION{$c}) {
		report(1, "$c is raised by " . where($c) . ", not by the extension: $NOT_RAISED_BY_EXTENSION{$c}");
	} else {
		report(0, "$c is raised by " . where($c) . " but $ERRORS does not list it under \"## Every SQLSTATE\"");
	}
}
exit $failed;
