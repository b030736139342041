package Inmsrl::Job;
# What run.pl, queue.pl and slurm.pl share: their Kaldi-style command line, the JOB=a:b task range,
# the bash script that runs one task and writes its self-describing log, `--pick failed`, and the
# final "K / N failed" report. Each wrapper only adds how tasks are started and followed.
#
# A task log looks like this (the same for every backend):
#   # <the command, with JOB replaced by the task id>
#   # Started at <date>
#   <stdout and stderr of the command>
#   # Accounting: time=<seconds> threads=<--num-threads>
#   # Ended (code <exit status>) at <date>, elapsed time <seconds> seconds
use strict;
use warnings;
use File::Basename qw(basename dirname);
use File::Path qw(make_path);
use POSIX ();

our $PROG = basename($0);    # the wrapper's name, at the start of every message

# Print "<prog>: <message>" to stderr and exit 1: the one way the wrappers report errors.
sub fail {
    my ($message) = @_;
    print STDERR "$PROG: $message\n";
    exit 1;
}

# Options taken from the command line that are not handed to the conf language.
my %FLAG_OPTIONS = (help => 1, dry_run => 1);    # these take no value
my %OWN_OPTIONS = (%FLAG_OPTIONS, config => 1, pick => 1);
# Single-dash submitter options that take no value (everything else, e.g. `-q all.q`, takes one).
my %VALUELESS_SUBMIT_FLAGS = ('-V' => 1, '-cwd' => 1);
my $NAME = qr/[A-Za-z_][A-Za-z0-9_]*/;

# Parse `[options] [JOB=a:b] [options] <log-file> <command> [args...]` (Kaldi allows options on both
# sides of the range; a NAME=... word there without '/' must be a valid range). Returns a hash:
#   options     => [[name, value], ...] for every --name value (name with '-' turned into '_')
#   passthrough => [words] single-dash options and their values, for the submitter
#   config, pick ('all' | 'failed'), dry_run (also set by env INMSRL_DRY_RUN=1)
#   var, ids    => the range's variable name (undef without a range) and its task ids
#   log, cmd    => the log path and the joined command, both still containing the variable
sub parse_command_line {
    my ($usage, @args) = @_;
    my %job = (options => [], passthrough => [], pick => 'all', ids => [1],
               dry_run => ($ENV{INMSRL_DRY_RUN} // '') !~ /^0?$/ ? 1 : 0);
    while (@args) {
        my $arg = $args[0];
        if ($arg =~ /^--([A-Za-z][A-Za-z0-9_-]*)(?:=(.*))?$/s) {
            shift @args;
            (my $name = $1) =~ tr/-/_/;
            my $value = $2;
            if ($FLAG_OPTIONS{$name}) {
                fail("option --$1 takes no value") if defined $value;
                if ($name eq 'help') { print $usage; exit 0; }
                $job{$name} = 1;
                next;
            }
            if (!defined $value) {
                fail("option --$1 needs a value\n$usage") unless @args;
                $value = shift @args;
            }
            if ($OWN_OPTIONS{$name}) { $job{$name} = $value; }
            else { push @{ $job{options} }, [$name, $value]; }
        } elsif ($arg =~ /^-[A-Za-z]/) {
            shift @args;
            push @{ $job{passthrough} }, $arg;
            next if $VALUELESS_SUBMIT_FLAGS{$arg};
            fail("option $arg needs a value (it is passed to the submitter)") unless @args;
            push @{ $job{passthrough} }, shift @args;
        } elsif (!defined $job{var} && $arg =~ /^($NAME)=(\d+)(?::(\d+))?$/) {
            shift @args;
            my ($first, $last) = ($2, $3 // $2);
            fail("$arg: empty range ($first > $last)") if $first > $last;
            $job{var} = $1;
            $job{ids} = [$first .. $last];
        } elsif (!defined $job{var} && $arg =~ m{^$NAME=[^/]*$}) {
            # Where the range goes, NAME=... is a range: a typo must not become the log file's name.
            fail("'$arg' is not a task range: expected NAME=first:last or NAME=id with whole numbers, "
                 . "e.g. JOB=1:4 (a log file named NAME=... needs a directory part: ./$arg)");
        } else {
            last;
        }
    }
    if (@args < 2) {
        print STDERR $usage;
        fail("expected a log file and a command after the options");
    }
    $job{log} = shift @args;
    $job{cmd} = join_command(@args);
    fail("--pick must be 'all' or 'failed', not '$job{pick}'") unless $job{pick} =~ /^(all|failed)$/;
    if (@{ $job{ids} } > 1 && index($job{log}, $job{var}) < 0) {
        fail("$job{var}=$job{ids}[0]:$job{ids}[-1] runs several tasks but the log file '$job{log}' "
             . "does not contain $job{var}; they would all write to it");
    }
    check_integer_option(\%job, 'num_threads', 1);
    check_integer_option(\%job, 'gpu', 0);
    check_integer_option(\%job, 'max_jobs_run', 1);
    return \%job;
}

# The value given for --<name> (the last one if repeated), or $default.
sub option {
    my ($job, $name, $default) = @_;
    my @given = grep { $_->[0] eq $name } @{ $job->{options} };
    return @given ? $given[-1][1] : $default;
}

sub check_integer_option {
    my ($job, $name, $minimum) = @_;
    my $value = option($job, $name);
    return if !defined $value || ($value =~ /^\d+$/ && $value >= $minimum);
    (my $spelled = $name) =~ tr/_/-/;
    fail("--$spelled must be an integer >= $minimum, not '$value'");
}

# Join command words into one bash command line as Kaldi does: a word without whitespace is used
# as-is, so shell syntax given as words of its own (`\|`, `'&&'`, `'>'`) still acts as such; other
# words are quoted: in double quotes (so $VAR still expands in the job, as in Kaldi) unless they
# contain a double quote, then in single quotes.
sub join_command {
    return join ' ', map {
        /^\S+$/ ? $_ : /"/ ? single_quote($_) : qq("$_")
    } @_;
}

# Quote a string for bash so that it stays one literal word.
sub single_quote {
    my ($text) = @_;
    $text =~ s/'/'\\''/g;
    return "'$text'";
}

# Show an argument list as a copy-pasteable shell command line.
sub shell_words {
    return join ' ', map { m{^[A-Za-z0-9_./:=,%+@-]+$} ? $_ : single_quote($_) } @_;
}

# Replace every occurrence of the range variable by the task id.
sub substitute {
    my ($job, $text, $id) = @_;
    return $text unless defined $job->{var};
    $text =~ s/\Q$job->{var}\E/$id/g;
    return $text;
}

sub log_for { my ($job, $id) = @_; return substitute($job, $job->{log}, $id); }

# Short name of the job, from its log file: exp/log/train.JOB.log -> "train". Used for the job name
# on the cluster and the files under <logdir>/q/.
sub job_name {
    my ($job) = @_;
    my $name = basename($job->{log});
    $name =~ s/\.log$//;
    $name =~ s/[.]?\Q$job->{var}\E//g if defined $job->{var};
    $name =~ s/[^A-Za-z0-9_.-]/_/g;
    $name = "j$name" if $name eq '' || $name =~ /^[0-9.]/;    # SGE refuses names starting with a digit
    return $name;
}

# <logdir>/q/: where queue.pl and slurm.pl keep batch scripts and the scheduler's own output.
sub queue_dir {
    my ($job) = @_;
    my $dir = dirname($job->{log}) . '/q';
    make_path($dir, { error => \my $errors });
    fail("cannot create directory $dir") unless -d $dir;
    return $dir;
}

# The bash script that runs one task; the same for every backend, so that all logs look alike.
# @TASK_ID@ sets the shell variable task_id (from $1, $SLURM_ARRAY_TASK_ID, ...).
my $TASK_SCRIPT = <<'BASH';
#!/bin/bash
@COMMENTS@@TASK_ID@
cmd=@CMD@
log=@LOG@
@SUBSTITUTE@mkdir -p -- "$(dirname -- "$log")" || exit 1
nl=$'\n'  # a multi-line command stays a comment in the header
{ echo "# ${cmd//$nl/$nl# }"; echo "# Started at $(date)"; } > "$log" || exit 1
SECONDS=0
bash -c "$cmd" >> "$log" 2>&1
code=$?
echo "# Accounting: time=$SECONDS threads=@THREADS@" >> "$log"
echo "# Ended (code $code) at $(date), elapsed time $SECONDS seconds" >> "$log"
exit $code
BASH

sub task_script {
    my ($job, $task_id_code, @comment_lines) = @_;
    my $var = $job->{var};
    my %fill = (
        COMMENTS => join('', map { "# $_\n" } @comment_lines),
        TASK_ID => $task_id_code,
        CMD => single_quote($job->{cmd}),
        LOG => single_quote($job->{log}),
        SUBSTITUTE => defined $var ? "cmd=\${cmd//$var/\$task_id}\nlog=\${log//$var/\$task_id}\n" : '',
        THREADS => option($job, 'num_threads', 1),
    );
    (my $script = $TASK_SCRIPT) =~ s/@([A-Z_]+)@/$fill{$1}/g;
    return $script;
}

sub write_file {
    my ($path, $text, $mode) = @_;
    open(my $fh, '>', $path) or fail("cannot write $path: $!");
    print $fh $text;
    close($fh) or fail("cannot write $path: $!");
    chmod($mode, $path) if defined $mode;
}

# The exit status in the "# Ended (code N)" footer that ends a task's log; undef without one.
sub footer_code {
    my ($log) = @_;
    open(my $fh, '<', $log) or return undef;
    my $size = -s $fh;
    seek($fh, $size > 4096 ? $size - 4096 : 0, 0);
    my @lines = grep { /\S/ } <$fh>;
    return @lines && $lines[-1] =~ /^# Ended \(code (\d+)\)/ ? $1 : undef;
}

sub task_succeeded { my $code = footer_code($_[0]); return defined $code && $code == 0; }

# The task ids this invocation runs: all of them, or with --pick failed those whose log does not
# show success. Exits 0 when there is nothing left to do.
sub tasks_to_run {
    my ($job) = @_;
    my @ids = @{ $job->{ids} };
    return @ids if $job->{pick} eq 'all';
    my @failed = grep { !task_succeeded(log_for($job, $_)) } @ids;
    if (!@failed) {
        print STDERR "$PROG: --pick failed: all ", scalar(@ids), " task(s) already succeeded, ",
            "nothing to run\n";
        exit 0;
    }
    return @failed;
}

# Task ids as ranges: (1,2,3,5) -> "1-3,5", the form of Slurm's --array.
sub format_ids {
    my @ids = sort { $a <=> $b } @_;
    my @parts;
    while (@ids) {
        my $first = my $last = shift @ids;
        $last = shift @ids while @ids && $ids[0] == $last + 1;
        push @parts, $first == $last ? $first : "$first-$last";
    }
    return join ',', @parts;
}

# Print the outcome of the tasks that ran ($failed: ids that failed) and return the exit status:
#   run.pl: 1 / 4 failed, log is in exp/log/x.3.log
#   run.pl: failed task(s): 3
sub report_failures {
    my ($job, $num_run, @failed) = @_;
    return 0 unless @failed;
    @failed = sort { $a <=> $b } @failed;
    my $log = log_for($job, $failed[0]);
    if ($num_run == 1) {
        print STDERR "$PROG: job failed, log is in $log\n";
    } else {
        print STDERR "$PROG: ", scalar(@failed), " / $num_run failed, log is in $log\n";
        print STDERR "$PROG: failed task(s): ", format_ids(@failed), "\n";
    }
    return 1;
}

# Run a command (no shell); return its stdout and stderr together, with its status in $?.
sub capture {
    my @command = @_;
    my $pid = open(my $fh, '-|') // fail("cannot fork: $!");
    if ($pid == 0) {
        open(STDERR, '>&', \*STDOUT);
        exec(@command) or do { print "cannot run $command[0]: $!\n"; POSIX::_exit(127) };
    }
    my $output = do { local $/; <$fh> } // '';
    close($fh);
    return $output;
}

# Append a line to a file (a task's log), creating it if needed; best effort.
sub append_line {
    my ($path, $line) = @_;
    make_path(dirname($path), { error => \my $errors });
    open(my $fh, '>>', $path) or return;
    print $fh "$line\n";
}

# Number of CPUs this process may use (the default of run.pl --max-jobs-run).
sub num_cpus {
    my $n = `nproc 2>/dev/null` // '';
    return $n =~ /^(\d+)/ && $1 > 0 ? $1 : 1;
}

1;
