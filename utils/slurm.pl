#!/usr/bin/env perl
# slurm.pl: run a command as JOB=a:b tasks of one Slurm array job, wait for it, report like run.pl.
# The Slurm backend of the Kaldi job interface (run.pl runs locally, queue.pl on SGE).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/lib";
use Inmsrl::Job;
use Inmsrl::SubmitConf;
use Time::HiRes qw(sleep);

my $DEFAULT_CONF = <<'CONF';
command sbatch --export=PATH --ntasks-per-node=1
option time=* --time=$0
option mem=* --mem-per-cpu=$0
option mem=0
option num_threads=* --cpus-per-task=$0
option num_threads=1 --cpus-per-task=1
default gpu=0
option gpu=0
option gpu=* -p gpu --gres=gpu:$0
CONF

my $USAGE = <<"USAGE";
usage: slurm.pl [options] [JOB=a:b] <log-file> <command> [args...]
Submits ONE Slurm array job whose tasks a..b each run <command> with JOB (or the range's variable
name) in <log-file> and <command> replaced by the task id, then follows it with scontrol (sacct if
Slurm forgot it) until every task ended. Logs are as with run.pl. Exits 1 if any task failed or was
killed by Slurm (time limit, memory, cancel, node failure...), naming the task and its log; a killed
task's log gets a "# Killed by Slurm: <STATE>" line. Ctrl-C or SIGTERM cancels the job (scancel).
The batch script and Slurm's own output (*.<task>.out) are kept in <logdir>/q/.
  e.g. slurm.pl --mem 4G --gpu 1 JOB=1:4 exp/log/train.JOB.log inmsrl train --part JOB

options:
  --mem 4G, --num-threads N, --gpu N, --time T, --<name> V
                     translated into sbatch options by the conf (below); any --<name> V needs an
                     'option <name>=...' line there (<name> with '-' written '_')
  --max-jobs-run M   at most M tasks run at once (--array=...%M)
  --config FILE      the conf to use instead of the built-in one
  --pick all|failed  with 'failed': submit only the tasks whose log lacks a "# Ended (code 0)" footer
  -x VALUE           options with one dash go to sbatch as they are (e.g. -p long, -A myaccount)
  --dry-run          print the sbatch command (and write the batch script) without submitting;
                     a debugging aid for confs, also env INMSRL_DRY_RUN=1
  --help             this message

Conf language (Kaldi's): 'command <submit command>', 'option <name>=* <sbatch options, \$0 = the
value>', 'option <name>=<value> <options>' (an exact value beats *; no options = add nothing),
'default <name>=<value>' (applied when --<name> is not given), '#' comments. The built-in conf:
$DEFAULT_CONF
USAGE

# Final job states other than COMPLETED and FAILED: Slurm ended the task; why, in words.
my %KILLED_BY_SLURM = (
    TIMEOUT => 'time limit', OUT_OF_MEMORY => 'out of memory', CANCELLED => 'cancelled with scancel',
    NODE_FAIL => 'node failure', PREEMPTED => 'preempted', DEADLINE => 'deadline reached',
    BOOT_FAIL => 'node boot failure', REVOKED => 'revoked', SPECIAL_EXIT => 'special exit',
);
my %FINAL_STATE = (COMPLETED => 1, FAILED => 1, %KILLED_BY_SLURM);

my $job = Inmsrl::Job::parse_command_line($USAGE, @ARGV);
my @ids = Inmsrl::Job::tasks_to_run($job);
my $conf = Inmsrl::SubmitConf::for_job($job, $DEFAULT_CONF);
my $max_jobs = Inmsrl::Job::option($job, 'max_jobs_run');
my @conf_options = grep { $_->[0] ne 'max_jobs_run' } @{ $job->{options} };

my $queue_dir = Inmsrl::Job::queue_dir($job);
my $name = Inmsrl::Job::job_name($job);
my $script = "$queue_dir/$name.sh";
my @sbatch = (
    Inmsrl::SubmitConf::translate($conf, @conf_options),
    '--parsable', "--job-name=$name", "--output=$queue_dir/$name.%a.out",
    '--array=' . Inmsrl::Job::format_ids(@ids) . (defined $max_jobs ? "%$max_jobs" : ''),
    @{ $job->{passthrough} },    # last, so that they win over the conf's options
    $script,
);
my $sbatch_line = Inmsrl::Job::shell_words(@sbatch);
Inmsrl::Job::write_file($script, Inmsrl::Job::task_script(
    $job,
    'task_id=${SLURM_ARRAY_TASK_ID:?this script runs as a task of a Slurm array job}',
    "Written by slurm.pl at " . localtime() . ", submitted with:", "  $sbatch_line",
), 0755);
if ($job->{dry_run}) {
    print "$sbatch_line\n";
    exit 0;
}

my $job_id = submit(@sbatch);
for my $signal (qw(INT TERM HUP)) {
    $SIG{$signal} = sub {
        system('scancel', $job_id);
        print STDERR "slurm.pl: received SIG$signal; cancelled Slurm job $job_id (scancel $job_id)\n";
        exit 1;
    };
}
my $states = wait_for_job($job_id);

my @failed;
for my $id (@ids) {
    my $task = $states->{$id} // { state => 'UNKNOWN' };
    my $log = Inmsrl::Job::log_for($job, $id);
    next if $task->{state} eq 'COMPLETED';
    # A task killed by jobacct_gather's OverMemoryKill ends FAILED; only Slurm's output says why.
    if ($task->{state} =~ /^(FAILED|UNKNOWN)$/ && over_memory_limit("$queue_dir/$name.$id.out")) {
        $task = { state => 'OUT_OF_MEMORY', reason => 'memory above the request, in Slurm\'s output' };
    }
    push @failed, $id;
    if (my $why = $KILLED_BY_SLURM{ $task->{state} }) {
        my $what = defined $job->{var} ? "task $id" : 'the job';
        print STDERR "slurm.pl: $what was killed by Slurm ($task->{state}: $why), log is in $log\n";
        my $reason = $task->{reason} eq 'None' ? '' : ", reason $task->{reason}";
        Inmsrl::Job::append_line($log, "# Killed by Slurm: $task->{state} ($why; job ${job_id}_$id$reason) "
                                       . "noticed at " . localtime());
    } elsif (!defined Inmsrl::Job::footer_code($log)) {
        print STDERR "slurm.pl: task $id ($task->{state}) wrote no '# Ended' footer in $log; "
            . "Slurm's output for it is in $queue_dir/$name.$id.out\n";
    }
}
exit Inmsrl::Job::report_failures($job, scalar(@ids), @failed);

# Whether Slurm's output for a task says that Slurm killed it for using more memory than requested.
sub over_memory_limit {
    my ($output) = @_;
    open(my $fh, '<', $output) or return 0;
    while (<$fh>) {
        return 1 if /slurmstepd.*(exceeded (job )?memory limit|oom-kill event)/i;
    }
    return 0;
}

# Run sbatch; return the job id or exit 1 with sbatch's message and the command.
sub submit {
    my @command = @_;
    my $output = Inmsrl::Job::capture(@command);
    my $status = $? >> 8;
    return $1 if $? == 0 && $output =~ /^(\d+)(;\S*)?\s*$/m;
    chomp $output;
    Inmsrl::Job::fail("sbatch failed (exit status $status): $output\n"
                      . "slurm.pl: the command was: " . Inmsrl::Job::shell_words(@command));
}

# Poll scontrol (1 s at first, backing off to 10 s) until no task of the job is pending or running.
# Slurm forgets ended jobs after MinJobAge (default 5 min), so each task's final state is kept as
# soon as it is seen; tasks never seen ended are looked up in sacct, then judged by their logs.
# Returns { task id => { state, reason } }.
sub wait_for_job {
    my ($id) = @_;
    my ($interval, $complained, %tasks) = (1, 0);
    while (1) {
        sleep($interval);
        $interval = $interval * 1.5 > 10 ? 10 : $interval * 1.5;
        my $output = Inmsrl::Job::capture('scontrol', 'show', 'job', '-o', $id);
        last if $? != 0 && $output =~ /Invalid job id/i;    # every record forgotten: the job ended
        if ($? != 0) {
            print STDERR "slurm.pl: scontrol show job $id failed, still trying: $output" unless $complained++;
            next;
        }
        $complained = 0;
        my $active = 0;
        for my $record (split /\n/, $output) {
            my ($task) = $record =~ /\bArrayTaskId=(\S+)/ or next;
            my ($state) = $record =~ /\bJobState=(\S+)/;
            my ($reason) = $record =~ /\bReason=(\S+)/;
            if ($FINAL_STATE{$state} && $task =~ /^\d+$/) {
                $tasks{$task} = { state => $state, reason => $reason // 'None' };
            } else {
                $active = 1;    # pending (maybe several tasks in one record), running, completing...
            }
        }
        last unless $active;
    }
    my @unseen = grep { !$tasks{$_} } @ids;
    if (@unseen) {
        my $accounting = sacct_states($id);
        for my $task (@unseen) {
            $tasks{$task} = $accounting->{$task} // state_from_log($task);
        }
    }
    return \%tasks;
}

# The task states from Slurm's accounting ({} where sacct does not answer).
sub sacct_states {
    my ($id) = @_;
    my $output = Inmsrl::Job::capture('sacct', '-n', '-P', '-X', '-j', $id, '-o', 'JobID,State');
    my %tasks;
    return \%tasks if $? != 0;
    for (split /\n/, $output) {
        $tasks{$1} = { state => $2, reason => 'from sacct' } if /^\d+_(\d+)\|(\w+)/;
    }
    return \%tasks;
}

# Last resort for a task Slurm forgot and sacct does not know: judge it by its log's footer.
sub state_from_log {
    my ($task) = @_;
    print STDERR "slurm.pl: Slurm no longer knows task ${job_id}_$task and sacct does not answer; "
        . "judging it by its log\n";
    my $ok = Inmsrl::Job::task_succeeded(Inmsrl::Job::log_for($job, $task));
    return { state => $ok ? 'COMPLETED' : 'UNKNOWN', reason => 'from log' };
}
