#!/usr/bin/env perl
# queue.pl: run a command as JOB=a:b tasks of one Grid Engine (SGE) array job, wait, report like run.pl.
# The SGE backend of the Kaldi job interface (run.pl runs locally, slurm.pl on Slurm).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/lib";
use Inmsrl::Job;
use Inmsrl::SubmitConf;
use Time::HiRes qw(sleep);

my $DEFAULT_CONF = <<'CONF';
command qsub -v PATH -cwd -S /bin/bash -j y -l arch=*64*
option mem=* -l mem_free=$0,ram_free=$0
option mem=0
option num_threads=* -pe smp $0
option num_threads=1
option max_jobs_run=* -tc $0
option time=* -l h_rt=$0
default gpu=0
option gpu=0
option gpu=* -l gpu=$0 -q g.q
CONF

my $USAGE = <<"USAGE";
usage: queue.pl [options] [JOB=a:b] <log-file> <command> [args...]
Submits ONE Grid Engine array job (qsub -t) whose tasks a..b each run <command> with JOB (or the
range's variable name) in <log-file> and <command> replaced by the task id, then follows it with
`qstat -j` and reads each task's exit status from `qacct -j` (from its log's footer where qacct
has nothing). Logs are as with run.pl. Exits 1 if any task failed, naming a failed task's log.
Ctrl-C or SIGTERM deletes the job (qdel). The batch script and qsub's own output are in <logdir>/q/.
  e.g. queue.pl --mem 4G JOB=1:4 exp/log/train.JOB.log inmsrl train --part JOB

options:
  --mem 4G, --num-threads N, --gpu N, --max-jobs-run M, --<name> V
                     translated into qsub options by the conf (below); any --<name> V needs an
                     'option <name>=...' line there (<name> with '-' written '_')
  --config FILE      the conf to use instead of the built-in one
  --pick all|failed  with 'failed': submit only the tasks whose log lacks a "# Ended (code 0)" footer
  -x VALUE           options with one dash go to qsub as they are (e.g. -q all.q, -l h_rt=1:00:00;
                     -V and -cwd take no value)
  --dry-run          print the qsub command (and write the batch script) without submitting;
                     a debugging aid for confs, also env INMSRL_DRY_RUN=1
  --help             this message

Conf language (Kaldi's): 'command <submit command>', 'option <name>=* <qsub options, \$0 = the
value>', 'option <name>=<value> <options>' (an exact value beats *; no options = add nothing),
'default <name>=<value>' (applied when --<name> is not given), '#' comments. The built-in conf:
$DEFAULT_CONF
USAGE

my $job = Inmsrl::Job::parse_command_line($USAGE, @ARGV);
my @ids = Inmsrl::Job::tasks_to_run($job);
my $conf = Inmsrl::SubmitConf::for_job($job, $DEFAULT_CONF);

# SGE numbers array tasks 1..K; task k runs our task id $ids[k-1], so `--pick failed` can submit
# any subset (say 3 and 5) as one array.
my $queue_dir = Inmsrl::Job::queue_dir($job);
my $name = Inmsrl::Job::job_name($job);
my $script = "$queue_dir/$name.sh";
my @qsub = (
    Inmsrl::SubmitConf::translate($conf, @{ $job->{options} }),
    '-terse', '-N', $name, '-o', "$queue_dir/$name.\$TASK_ID.out", '-t', '1-' . scalar(@ids),
    @{ $job->{passthrough} },    # last, so that they win over the conf's options
    $script,
);
my $qsub_line = Inmsrl::Job::shell_words(@qsub);
Inmsrl::Job::write_file($script, Inmsrl::Job::task_script(
    $job,
    "task_ids=(@ids)\n"
    . 'task_id=${task_ids[${SGE_TASK_ID:?this script runs as a task of an SGE array job} - 1]}',
    "Written by queue.pl at " . localtime() . ", submitted with:", "  $qsub_line",
), 0755);
if ($job->{dry_run}) {
    print "$qsub_line\n";
    exit 0;
}

my $job_id = submit(@qsub);
for my $signal (qw(INT TERM HUP)) {
    $SIG{$signal} = sub {
        system('qdel', $job_id);
        print STDERR "queue.pl: received SIG$signal; deleted SGE job $job_id (qdel $job_id)\n";
        exit 1;
    };
}
wait_for_job($job_id);
my $accounting = qacct_by_task($job_id);

my @failed;
for my $index (1 .. @ids) {
    my $id = $ids[$index - 1];
    my $log = Inmsrl::Job::log_for($job, $id);
    my $task = $accounting->{$index};
    if (!$task) {    # no accounting record: trust the footer the task wrote
        push @failed, $id unless Inmsrl::Job::task_succeeded($log);
        next;
    }
    next if $task->{exit_status} == 0 && $task->{failed} =~ /^0\b/;
    push @failed, $id;
    if ($task->{failed} !~ /^0\b/) {
        print STDERR "queue.pl: task $id was ended by SGE (failed: $task->{failed}), log is in $log\n";
        Inmsrl::Job::append_line($log, "# Ended by SGE: failed=$task->{failed}, "
                                       . "exit_status=$task->{exit_status} (job $job_id.$index)");
    }
}
exit Inmsrl::Job::report_failures($job, scalar(@ids), @failed);

# Run qsub; return the job id or exit 1 with qsub's message and the command.
sub submit {
    my @command = @_;
    my $output = Inmsrl::Job::capture(@command);
    return $1 if $? == 0 && $output =~ /^(\d+)(\.\S*)?\s*$/m;    # -terse prints "<id>.1-4:1"
    chomp $output;
    Inmsrl::Job::fail("qsub failed (exit status " . ($? >> 8) . "): $output\n"
                      . "queue.pl: the command was: " . Inmsrl::Job::shell_words(@command));
}

# Poll `qstat -j` (1 s at first, backing off to 10 s) until SGE says the job does not exist.
sub wait_for_job {
    my ($id) = @_;
    my ($interval, $complained) = (1, 0);
    while (1) {
        sleep($interval);
        $interval = $interval * 1.5 > 10 ? 10 : $interval * 1.5;
        my $output = Inmsrl::Job::capture('qstat', '-j', $id);
        next if $? == 0;    # still queued or running
        return if $output =~ /do not exist/i;
        print STDERR "queue.pl: qstat -j $id failed, still trying: $output" unless $complained++;
    }
}

# { SGE task index => { exit_status, failed } } from `qacct -j`, which can lag the end of the job
# by a few seconds; tries for up to a minute and returns what it has (maybe nothing).
sub qacct_by_task {
    my ($id) = @_;
    my %tasks;
    for my $try (1 .. 12) {
        my $output = Inmsrl::Job::capture('qacct', '-j', $id);
        if ($? == 0) {
            for my $record (split /^=+\s*$/m, $output) {
                my ($index) = $record =~ /^taskid\s+(\d+)/m or next;
                my ($exit) = $record =~ /^exit_status\s+(\d+)/m;
                my ($failed) = $record =~ /^failed\s+(.*?)\s*$/m;
                $tasks{$index} = { exit_status => $exit // 0, failed => $failed // '0' };
            }
        }
        last if keys(%tasks) >= @ids;
        sleep(5);
    }
    return \%tasks;
}
