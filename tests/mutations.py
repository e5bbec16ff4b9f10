"""``python -m tests.mutations``: break the package on purpose, one obvious break at a time, and
check that the tests catch each one.

Each mutation replaces one exact piece of source text (it must occur exactly once: a mutation
that no longer applies is an error, so the list follows the code) in a temporary copy of the
project, then runs the tests that guard it. A mutation the tests do not catch "survives": the
command names it and exits 1. It prints ``N/M mutations killed``. Live tests need root; the run
takes about three minutes here (2 cores), so it is not part of every CI run.

    python -m tests.mutations            # all
    python -m tests.mutations --list     # names only
    python -m tests.mutations NAME...    # some
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests.project_copy import copy_project, importing

GUARANTEES = "tests/test_guarantees_live.py"
FORGED = f"{GUARANTEES}::test_forged_datagrams_and_stale_bytes_never_surface"
LOSS = f"{GUARANTEES}::test_loss_is_reported_on_every_path"
DEADLINES = f"{GUARANTEES}::test_deadlines_are_kept_from_both_sides"
CLOSING = f"{GUARANTEES}::test_every_way_of_closing_unsubscribes"
PARSE = "tests/test_parse.py"
FUZZ = "tests/test_fuzz.py"
HOSTILE = "tests/test_hostile_live.py"
UNITS = "tests/test_record_units.py"
RECORD = "tests/test_record_live.py"
VALUES = "tests/test_command_values_live.py"
CAPTURE = "tests/test_exec_capture_live.py"


@dataclass(frozen=True)
class Mutation:
    name: str
    guarantee: str  # the SECURITY.md guarantee (or API promise) it breaks
    file: str
    old: str
    new: str
    tests: tuple[str, ...]


PRIORITY = "tests/test_priority_live.py"

MUTATIONS = [
    # The listener's time slice: asked for, and in the kernel's account as said.
    # Where it runs: containers, refused fields.
    Mutation(
        "the first cgroup line shown, not the unified hierarchy's",
        "the record says where it runs",
        "pyprocconn/containers.py",
        "    return unified + others",
        "    return others + unified",
        ("tests/test_containers.py",),
    ),
    Mutation(
        "cgroup lines split at any line break",
        "a cgroup name cannot forge a line",
        "pyprocconn/containers.py",
        'for line in (os.fsdecode(part) for part in raw.split(b"\\n") if part):',
        "for line in os.fsdecode(raw).splitlines():",
        ("tests/test_containers.py",),
    ),
    Mutation(
        "a refused field taken for gone",
        "the record says what /proc refused",
        "pyprocconn/procfs.py",
        "    except PermissionError:\n        return REFUSED\n",
        "    except PermissionError:\n        return None\n",
        ("tests/test_service.py",),
    ),
    Mutation(
        "a pod's QoS class lost",
        "the record says which container",
        "pyprocconn/containers.py",
        'named.group(1) or "guaranteed"',
        '"guaranteed"',
        ("tests/test_containers.py",),
    ),
    Mutation(
        "the slice asked for is ten times the one given",
        "the command runs with the shortest time slice",
        "pyprocconn/priority.py",
        "attr.sched_runtime = round(seconds * 1e9)",
        "attr.sched_runtime = round(seconds * 1e10)",
        (PRIORITY,),
    ),
    Mutation(
        "the command keeps the kernel's slice",
        "the command runs with the shortest time slice",
        "pyprocconn/command/main.py",
        "    granted = shorten_slice()\n",
        "    granted = __import__('pyprocconn.priority').priority.time_slice()\n",
        (f"{PRIORITY}::test_the_command_runs_at_nice_minus_20_with_the_shortest_slice",),
    ),
    # Wake-ups: lingering for company, never at an exec's cost.
    Mutation(
        "the doorbell is not listened to during a linger",
        "an exec's /proc is read at once",
        "pyprocconn/connector.py",
        "        return 3 if doorbell._wait(linger) else 2\n",
        "        time.sleep(linger)\n        return 2\n",
        ("tests/test_urgent_live.py::test_an_exec_ends_a_linger_at_once_and_is_in_the_batch",),
    ),
    Mutation(
        "the table lingers while execs come close together",
        "an exec's /proc is read at once",
        "pyprocconn/processes.py",
        "        self._exec_times.extend(event.timestamp_ns for event in execs)\n",
        "",
        ("tests/test_urgent_live.py::test_the_table_lingers_unless_execs_come_close_together",),
    ),
    Mutation(
        "an exit queued behind a rescan loses its process",
        "each record true at its moment",
        "pyprocconn/processes.py",
        "            gone = self._gone.pop(tgid, None) if pid == tgid else None\n",
        "            gone = None\n",
        (
            "tests/test_processes_live.py::test_an_exit_still_queued_at_a_rescan_carries_its_process",
        ),
    ),
    Mutation(
        "a line written while Ctrl-C is not held off",
        "one event is one line",
        "pyprocconn/command/sink.py",
        "        held = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)\n",
        "        held = signal.pthread_sigmask(signal.SIG_BLOCK, set())\n",
        ("tests/test_sink.py",),
    ),
    # The audit's thirteen.
    Mutation(
        "batch decoder ignores senders",
        "only the kernel speaks",
        "pyprocconn/decode.py",
        "if flags & msg_trunc or (senders is not None and senders[start // slot_size]):",
        "if flags & msg_trunc:",
        (FORGED,),
    ),
    Mutation(
        "caller-buffer path takes every sender for the kernel",
        "only the kernel speaks",
        "pyprocconn/connector.py",
        "sender = [self._recvfrom.sender.nl_pid]",
        "sender = [0]",
        (FORGED,),
    ),
    Mutation(
        "caller-buffer path decodes the whole buffer",
        "nothing is read past the bytes received",
        "pyprocconn/connector.py",
        "received = [(flags, min(nbytes, len(view)))]",
        "received = [(flags, len(view))]",
        (FORGED,),
    ),
    Mutation(
        "batch decoder reads the whole slot",
        "nothing is read past the bytes received",
        "pyprocconn/decode.py",
        "offset, remaining = start, nbytes",
        "offset, remaining = start, max(slot_size, nbytes)",
        (FORGED,),
    ),
    Mutation(
        "loss gap off by one",
        "loss is never silent",
        "pyprocconn/decode.py",
        "gap = (seq - last - 1) & 0xFFFFFFFF",
        "gap = (seq - last - 2) & 0xFFFFFFFF",
        (
            LOSS,
            "tests/test_connector_live.py::"
            "test_overrun_is_reported_with_the_exact_count_and_the_connector_goes_on",
        ),
    ),
    Mutation(
        "LISTEN sent instead of IGNORE on close",
        "resources: every LISTEN is matched by an IGNORE",
        "pyprocconn/connector.py",
        "subscription_request(cn_proc.PROC_CN_MCAST_IGNORE, None, self._token())",
        "subscription_request(cn_proc.PROC_CN_MCAST_LISTEN, None, self._token())",
        (CLOSING,),
    ),
    Mutation(
        "the timeout waits 1.5x too long",
        "a receive with a timeout keeps its deadline",
        "pyprocconn/connector.py",
        "max(0.0, timeout) * 1000",
        "max(0.0, timeout) * 1500",
        (DEADLINES,),
    ),
    Mutation(
        "the iterator drops EventsLost",
        "loss is never silent",
        "pyprocconn/connector.py",
        "                    yield self._take()\n                self._fill(None, self._linger)",
        "                    item = self._take()\n"
        "                    if type(item) is not EventsLost:\n"
        "                        yield item\n"
        "                self._fill(None, self._linger)",
        (LOSS,),
    ),
    Mutation(
        "an error ack during subscribing is ignored",
        "a refused subscription raises",
        "pyprocconn/connector.py",
        "        if error:\n            advice",
        "        if False:\n            advice",
        (f"{GUARANTEES}::test_a_refused_subscription_raises_with_the_kernels_errno",),
    ),
    Mutation(
        "no EINTR retry",
        "signals",
        "pyprocconn/_libc.py",
        "        result = function(*args)\n        if result != -1:\n            return result\n"
        "        error = ctypes.get_errno()\n        if error != errno.EINTR:",
        "        result = function(*args)\n        if result != -1:\n            return result\n"
        "        error = ctypes.get_errno()\n        if True:",
        (f"{HOSTILE}::test_signal_handlers_during_a_blocking_receive_are_retried",),
    ),
    Mutation(
        "a forked child sends IGNORE",
        "fork() rule",
        "pyprocconn/connector.py",
        "if os.getpid() == self._owner_pid:",
        "if True:",
        (f"{HOSTILE}::test_a_forked_child_does_not_disturb_the_parent",),
    ),
    Mutation(
        "parse_events ignores nbytes",
        "nothing is read past the bytes received",
        "pyprocconn/parse.py",
        "end = size if nbytes is None else nbytes",
        "end = size",
        (PARSE, FUZZ),
    ),
    Mutation(
        "the async iterator drops EventsLost",
        "loss is never silent",
        "pyprocconn/connector.py",
        "                    yield self._take()\n                ready = loop.create_future()",
        "                    item = self._take()\n"
        "                    if type(item) is not EventsLost:\n"
        "                        yield item\n"
        "                ready = loop.create_future()",
        (LOSS,),
    ),
    # One more per SECURITY.md guarantee, on code the thirteen do not touch.
    Mutation(
        "a batch from anyone is taken as the kernel's",
        "only the kernel speaks",
        "pyprocconn/_libc.py",
        "if names == self._from_kernel[: len(names)]:",
        "if True:",
        (FORGED, f"{GUARANTEES}::test_a_forged_ack_during_subscription_is_not_taken"),
    ),
    Mutation(
        "the message iterator ignores nbytes",
        "nothing is read past the bytes received",
        "pyprocconn/parse.py",
        "self._end = len(view) if nbytes is None else nbytes",
        "self._end = len(view)",
        (PARSE, FUZZ),
    ),
    Mutation(
        "nlmsg_len not checked against the bytes left",
        "bad bytes never crash the receiver",
        "pyprocconn/decode.py",
        "    if length < _NLMSGHDR.size or length > remaining:",
        "    if length < _NLMSGHDR.size:",
        (PARSE, FUZZ),
    ),
    Mutation(
        "fields past the bytes sent are read anyway",
        "decode by the kernel's compatibility rule",
        "pyprocconn/decode.py",
        "fitting = [f for f in cls.SPEC.fields if f.end <= sent]",
        "fitting = list(cls.SPEC.fields)",
        (PARSE, FUZZ),
    ),
    Mutation(
        "ENOBUFS swallowed by the batch receive",
        "loss is never silent",
        "pyprocconn/connector.py",
        "            self._stream.lose(self._pending, None)\n            return -1",
        "            return -1",
        (LOSS,),
    ),
    Mutation(
        "recv's shortcut hands out a loss marker",
        "loss is never silent",
        "pyprocconn/connector.py",
        "self._fd >= 0 and not self._stream.markers:\n            # The usual call",
        "self._fd >= 0:\n            # The usual call",
        (f"{GUARANTEES}::test_a_loss_inside_a_batch_is_raised_not_handed_out",),
    ),
    Mutation(
        "recv's shortcut reads a closed connector",
        "use after close raises",
        "pyprocconn/connector.py",
        "self._fd >= 0 and not self._stream.markers:\n            # The usual call",
        "not self._stream.markers:\n            # The usual call",
        ("tests/test_connector_live.py::test_use_after_close_raises_with_events_still_queued",),
    ),
    Mutation(
        "the process table rescans /proc at every loss",
        "a long overrun costs one rescan per interval",
        "pyprocconn/processes.py",
        "self._next_rescan = time.monotonic() + self.resync_interval",
        "self._next_rescan = time.monotonic()",
        ("tests/test_processes_live.py::test_a_long_overrun_costs_one_rescan_per_interval",),
    ),
    Mutation(
        "recv's shortcut lets a second thread take decoded events",
        "threads rule: one thread at a time",
        "pyprocconn/connector.py",
        "if pending and self._user is None and self._fd >= 0 and not self._stream.markers:\n"
        "            # The usual call",
        "if pending and self._fd >= 0 and not self._stream.markers:\n            # The usual call",
        (
            "tests/test_library_edges.py::"
            "test_a_second_thread_is_told_the_rule_with_events_already_decoded",
        ),
    ),
    Mutation(
        "the first iteration to end releases the thread's claim",
        "threads rule: one thread at a time",
        "pyprocconn/connector.py",
        "        self._depth -= 1\n        if not self._depth:\n",
        "        self._depth -= 1\n        if True:\n",
        ("tests/test_library_edges.py::test_iterations_ending_in_any_order_release_the_connector",),
    ),
    Mutation(
        "a second thread is let in",
        "threads rule: one thread at a time",
        "pyprocconn/connector.py",
        "        if user is not None and user != me:",
        "        if False:",
        ("tests/test_library_edges.py::test_two_threads_on_one_connector_are_told_the_rule",),
    ),
    Mutation(
        "a caller buffer too small is read anyway",
        "bad input loses nothing",
        "pyprocconn/connector.py",
        "            if waiting > len(view):",
        "            if False:",
        ("tests/test_library_edges.py::test_a_buffer_too_small_is_an_error_and_loses_nothing",),
    ),
    Mutation(
        "an interrupted construction leaves its LISTEN counted",
        "resources: every LISTEN is matched by an IGNORE",
        "pyprocconn/connector.py",
        "                self._doorbell.close()\n            self._undo_listen()",
        "                self._doorbell.close()",
        (f"{GUARANTEES}::test_a_construction_interrupted_while_waiting_for_the_ack_unsubscribes",),
    ),
    Mutation(
        "close leaks the descriptor",
        "resources: no descriptor leaks",
        "pyprocconn/connector.py",
        "        finally:\n            _libc.close(fd)",
        "        finally:\n            pass",
        ("tests/test_connector_live.py::test_repeated_open_close_leaks_no_descriptor",),
    ),
    Mutation(
        "the ack wait ignores its bound",
        "namespaces: construction fails after a bounded wait",
        "pyprocconn/connector.py",
        "        deadline = time.monotonic() + timeout\n        try:",
        "        deadline = time.monotonic() + 10 * timeout\n        try:",
        (f"{HOSTILE}::test_outside_the_initial_namespaces_construction_fails_cleanly",),
    ),
    Mutation(
        "a failed construction leaks its socket",
        "namespaces: no descriptor left behind",
        "pyprocconn/connector.py",
        "            self._undo_listen()\n            _libc.close(self._fd)",
        "            self._undo_listen()\n            pass",
        (
            f"{HOSTILE}::test_outside_the_initial_namespaces_construction_fails_cleanly",
            f"{GUARANTEES}::test_a_refused_subscription_raises_with_the_kernels_errno",
        ),
    ),
    # Issue 16: what the record says.
    Mutation(
        "a field the kernel sent half of is decoded",
        "decode by the kernel's compatibility rule",
        "pyprocconn/decode.py",
        "fitting = [f for f in cls.SPEC.fields if f.end <= sent]",
        "fitting = [f for f in cls.SPEC.fields if f.offset < sent]",
        (f"{UNITS}::test_a_field_the_kernel_sent_only_part_of_is_none",),
    ),
    Mutation(
        "the usual path takes another connector's message for an event",
        "only process events are events",
        "pyprocconn/decode.py",
        "                            and values[at_idx] == proc_idx\n"
        "                            and values[at_val] == proc_val\n",
        "",
        (f"{UNITS}::test_another_connectors_message_is_no_event",),
    ),
    Mutation(
        "exit 200 reported as exit 72",
        "the record says how it ended",
        "pyprocconn/events.py",
        "return os.WEXITSTATUS(self.exit_code) if",
        "return (self.exit_code >> 8) & 0x7F if",
        (
            f"{RECORD}::test_an_exit_status_is_what_the_process_gave",
            f"{VALUES}::test_nonzero_exit_shows_only_the_exits_that_failed",
        ),
    ),
    Mutation(
        "the rescan takes a reused pid for the process it held",
        "the record says which process it is",
        "pyprocconn/processes.py",
        "and abs(known.start_ns - process.start_ns) > _SAME_START_NS",
        "and False",
        (f"{RECORD}::test_a_pid_reused_during_a_loss_is_told_apart",),
    ),
    Mutation(
        "the table's process cap ignored",
        "memory stays bounded",
        "pyprocconn/processes.py",
        "if process.pid in self.processes or len(self.processes) < self.max_processes:",
        "if True:",
        (f"{RECORD}::test_the_table_holds_no_more_processes_than_its_cap",),
    ),
    Mutation(
        "a uid event leaves the effective uid stale",
        "the record carries the process as it was at its event",
        "pyprocconn/processes.py",
        "uid=event.ruid, euid=event.euid)",
        "uid=event.ruid)",
        (
            "tests/test_processes_live.py::"
            "test_each_record_carries_the_process_as_it_was_at_that_event",
            f"{RECORD}::test_each_id_change_is_on_its_own_record_and_kept_to_the_end",
        ),
    ),
    Mutation(
        "/proc's effective uid taken for the real one",
        "the record carries the process as it was at its event",
        "pyprocconn/processes.py",
        "uid, euid = (int(v) for v in uids.split()[:2])",
        "euid, uid = (int(v) for v in uids.split()[:2])",
        ("tests/test_processes_live.py::test_the_snapshot_reads_each_id_in_its_place",),
    ),
    Mutation(
        "/proc's gids read from the Uid line",
        "the record carries the process as it was at its event",
        "pyprocconn/processes.py",
        "gid, egid = (int(v) for v in gids.split()[:2])",
        "gid, egid = (int(v) for v in uids.split()[:2])",
        ("tests/test_processes_live.py::test_the_snapshot_reads_each_id_in_its_place",),
    ),
    Mutation(
        "a status line found anywhere, not at a line's start",
        "nothing a process chooses can forge what the record says",
        "pyprocconn/procfs.py",
        'start = raw.find(b"\\n" + key)',
        "start = raw.find(key) - 1",
        ("tests/test_processes_live.py::test_a_name_cannot_forge_or_break_a_status_line",),
    ),
    Mutation(
        "an exec another exec of its process followed is given the later program",
        "the record carries the process as it was at its event",
        "pyprocconn/processes.py",
        "            if event is not last[tgid]:",
        "            if False:",
        (
            f"{CAPTURE}::test_an_exec_followed_by_another_before_the_read_shows_nothing_of_the_later",
        ),
    ),
    Mutation(
        "an exec read after the next exec of its process came kept as read",
        "the record carries the process as it was at its event",
        "pyprocconn/processes.py",
        "if earlier in captured and event.timestamp_ns < done_ns:",
        "if False:",
        (
            f"{CAPTURE}::test_an_exec_followed_by_another_before_the_read_shows_nothing_of_the_later",
        ),
    ),
    Mutation(
        "an earlier read judged by a batch's last exec of its process, not its first",
        "the record carries the process as it was at its event",
        "pyprocconn/processes.py",
        "            if tgid not in first:",
        "            if event is last[tgid]:",
        (
            f"{CAPTURE}::test_an_exec_read_before_the_next_of_its_process_came_is_checked_against_the_first",
        ),
    ),
    Mutation(
        "receive hands a batch on without reading what came meanwhile",
        "every short-lived command by default",
        "pyprocconn/processes.py",
        "            self.capture_execs(taken)\n            if len(batch) >= _RECEIVED_MAX:",
        "            if True:",
        (
            f"{CAPTURE}::test_an_exec_that_comes_while_a_batch_is_read_is_read_before_it_is_handed_on",
        ),
    ),
    Mutation(
        "the exec reader's read never used",
        "every short-lived command by default",
        "pyprocconn/processes.py",
        "if found is not None and found.cmdline:",
        "if False:",
        (
            f"{CAPTURE}::test_the_exec_reader_has_what_the_table_itself_came_too_late_for",
            "tests/test_cli.py::test_the_exec_reader_reads_what_the_stopped_command_could_not",
        ),
    ),
    Mutation(
        "the exec reader outlives a killed table",
        "nothing left behind: a listener unsubscribes",
        "pyprocconn/exec_reader.py",
        "while os.getppid() == parent:",
        "while True:",
        (f"{CAPTURE}::test_the_exec_reader_ends_with_its_table_and_with_its_process",),
    ),
    Mutation(
        "ids read again from /proc at every exec",
        "the record carries the process as it was at its event",
        "pyprocconn/processes.py",
        "self._apply(process, capture, ids=old is None or old.uid is None)",
        "self._apply(process, capture, ids=True)",
        (
            "tests/test_processes_live.py::test_an_id_change_after_an_exec_in_its_batch_is_not_the_execs",
        ),
    ),
    Mutation(
        "-p loses a child forked by a thread",
        "-p: the process and all its descendants",
        "pyprocconn/command/follow.py",
        "if event.parent_tgid in self.threads or tgid in self.threads:",
        "if event.parent_pid in self.threads or tgid in self.threads:",
        (f"{VALUES}::test_pid_follows_a_child_forked_by_a_thread",),
    ),
    Mutation(
        "--nonzero-exit lets exit 0 through in user space",
        "the command shows what was asked",
        "pyprocconn/command/options.py",
        "return exits or (only_nonzero_exits and bool(event.exit_code))",
        "return exits or only_nonzero_exits",
        (f"{VALUES}::test_nonzero_exit_shows_only_the_exits_that_failed",),
    ),
    Mutation(
        "JSON duration taken from the clock at print time",
        "the record says how long it lived",
        "pyprocconn/command/output.py",
        'record["duration_s"] = entry.lifetime_ns / 1e9',
        'record["duration_s"] = (time.monotonic_ns() - entry.process.start_ns) / 1e9',
        (f"{VALUES}::test_json_duration_is_the_lifetime_the_kernel_gave",),
    ),
    Mutation(
        "text duration cut to whole seconds",
        "the record says how long it lived",
        "pyprocconn/command/output.py",
        "after {entry.lifetime_ns / 1e9:.3f}s",
        "after {entry.lifetime_ns // 1_000_000_000:.3f}s",
        (f"{VALUES}::test_text_duration_is_the_lifetime_to_the_millisecond",),
    ),
    Mutation(
        "--check says events will flow when the kernel never answered",
        "--check tells the truth",
        "pyprocconn/check.py",
        'f"no answer from the kernel: {error.strerror}"))\n        return lines, False',
        'f"no answer from the kernel: {error.strerror}"))\n        return lines, True',
        (f"{VALUES}::test_check_says_no_when_the_kernel_never_answers",),
    ),
    Mutation(
        "a thread's lifetime counted from its process's start",
        "the record says how long it lived",
        "pyprocconn/processes.py",
        ".others[event.child_pid] = ts",
        ".others[event.child_pid] = process.start_ns",
        (
            f"{RECORD}::test_a_thread_exit_carries_the_threads_own_lifetime",
            f"{VALUES}::test_json_duration_is_the_lifetime_the_kernel_gave",
            f"{VALUES}::test_text_duration_is_the_lifetime_to_the_millisecond",
        ),
    ),
    Mutation(
        "a child forked by a thread gets the thread as its parent",
        "the record says who the parent is",
        "pyprocconn/processes.py",
        "ppid = event.parent_tgid",
        "ppid = event.parent_pid",
        (f"{RECORD}::test_a_child_forked_by_a_thread_has_the_process_as_parent",),
    ),
    Mutation(
        "the parent chain stops at the nearest parent",
        "the record says who the parents are",
        "pyprocconn/processes.py",
        "ppid = parent.ppid if parent is not None else 0",
        "ppid = parent.pid if parent is not None else 0",
        (f"{RECORD}::test_an_exit_carries_the_whole_parent_chain",),
    ),
    Mutation(
        "a setsid record carries the process as it was before",
        "the record carries the process as it was at its event",
        "pyprocconn/processes.py",
        "process = self._change(process, sid=event.process_tgid)",
        "self._change(process, sid=event.process_tgid)",
        (f"{RECORD}::test_each_id_change_is_on_its_own_record_and_kept_to_the_end",),
    ),
    Mutation(
        "a thread's new name renames its process",
        "the record says what the process is called",
        "pyprocconn/processes.py",
        "if process is not None and event.process_pid == event.process_tgid:",
        "if process is not None:",
        (
            f"{RECORD}::test_a_thread_renaming_itself_leaves_the_process_name",
            f"{VALUES}::test_pid_follows_the_process_past_its_threads_exits",
        ),
    ),
    Mutation(
        "the working directory read from the root link",
        "the record says where it runs",
        "pyprocconn/processes.py",
        'procfs.link(f"/proc/{pid}/cwd")',
        'procfs.link(f"/proc/{pid}/root")',
        (
            f"{RECORD}::test_an_exec_records_where_it_runs",
            f"{VALUES}::test_ids_and_user_names_are_the_processes_own",
        ),
    ),
    Mutation(
        "-p stops following a process when one of its threads exits",
        "-p: the process and all its descendants",
        "pyprocconn/command/follow.py",
        "            if not threads:\n                del self.threads[event.process_tgid]",
        "            if True:\n                del self.threads[event.process_tgid]",
        (
            f"{VALUES}::test_pid_follows_the_process_past_its_threads_exits",
            "tests/test_cli.py::test_pid_follows_a_thread_that_execs",  # caught already
        ),
    ),
    Mutation(
        "JSON euid is the real uid",
        "the record says who it runs as",
        "pyprocconn/command/output.py",
        '"euid": process.euid,',
        '"euid": process.uid,',
        (f"{VALUES}::test_ids_and_user_names_are_the_processes_own",),
    ),
    Mutation(
        "JSON user named after the real uid",
        "the record says who it runs as",
        "pyprocconn/command/output.py",
        '"user": user_name(process.euid),',
        '"user": user_name(process.uid),',
        (f"{VALUES}::test_ids_and_user_names_are_the_processes_own",),
    ),
    Mutation(
        "text USER column named after the real uid",
        "the record says who it runs as",
        "pyprocconn/command/output.py",
        "(user_name(euid))",
        "(user_name(uid))",
        (f"{VALUES}::test_ids_and_user_names_are_the_processes_own",),
    ),
    Mutation(
        "text EUID column shows the real uid",
        "the record says who it runs as",
        "pyprocconn/command/output.py",
        "{_dash(uid):>6} {_dash(euid):>6}",
        "{_dash(uid):>6} {_dash(uid):>6}",
        (f"{VALUES}::test_ids_and_user_names_are_the_processes_own",),
    ),
    Mutation(
        "a uid line shows the real uid as the effective one",
        "the record says who it runs as",
        "pyprocconn/command/output.py",
        'f"ruid {e.ruid} euid {e.euid}"',
        'f"ruid {e.ruid} euid {e.ruid}"',
        (f"{VALUES}::test_ids_and_user_names_are_the_processes_own",),
    ),
    Mutation(
        "--user matches the real uid only",
        "the command shows what was asked",
        "pyprocconn/command/follow.py",
        "self.uid not in (process.uid, process.euid)",
        "self.uid != process.uid",
        (f"{VALUES}::test_user_matches_the_effective_user_too",),
    ),
    Mutation(
        "JSON time is the time of printing",
        "the record says when it happened",
        "pyprocconn/command/output.py",
        '"time": self.clock.iso(event.timestamp_ns)',
        '"time": self.clock.iso(None)',
        (f"{VALUES}::test_each_line_has_the_time_of_its_event_not_of_its_printing",),
    ),
    Mutation(
        "text time is the time of printing",
        "the record says when it happened",
        "pyprocconn/command/output.py",
        '            event.timestamp_ns,\n            "thread" if entry.thread',
        '            None,\n            "thread" if entry.thread',
        (f"{VALUES}::test_each_line_has_the_time_of_its_event_not_of_its_printing",),
    ),
    Mutation(
        "wait_for_exits takes a thread's exit for the process's",
        "wait: how the process ended",
        "pyprocconn/wait.py",
        "        threads.remove(event.process_pid)\n        return not threads",
        "        threads.remove(event.process_pid)\n        return True",
        (
            f"{RECORD}::test_wait_for_exits_waits_for_the_last_thread",
            f"{RECORD}::test_wait_for_exits_waits_for_a_process_whose_main_thread_ended_first",
        ),
    ),
    Mutation(
        "a zombie's status read from the field before",
        "wait: how the process ended",
        "pyprocconn/procfs.py",
        "_STATE, _PPID, _SESSION, _FLAGS, _STARTTIME, _EXIT_CODE = 3, 4, 6, 9, 22, 52",
        "_STATE, _PPID, _SESSION, _FLAGS, _STARTTIME, _EXIT_CODE = 3, 4, 6, 9, 22, 51",
        (f"{RECORD}::test_wait_for_exits_gives_a_zombies_status_from_proc",),
    ),
]


def _pytest(copy: Path, tests: tuple[str, ...]) -> tuple[int, str]:
    environment = importing(copy)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests],
            cwd=copy,
            env=environment,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return 1, "hung for 300 s (a hang is not a pass)"
    lines = done.stdout.strip().splitlines()
    return done.returncode, lines[-1] if lines else done.stderr.strip()[-200:]


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.mutations", description=__doc__)
    parser.add_argument("names", nargs="*", help="run only these mutations")
    parser.add_argument("--list", action="store_true", help="list the mutations and stop")
    args = parser.parse_args()
    chosen = [m for m in MUTATIONS if not args.names or m.name in args.names]
    if args.list or not chosen:
        for mutation in MUTATIONS:
            print(f"{mutation.name}  [{mutation.guarantee}]")
        return 0 if chosen or args.list else 2
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="pyprocconn-mutations-") as scratch:
        # Readable by all: some tests run the command as an unprivileged user, which must
        # import the mutated copy, not fall back to an installed tree.
        Path(scratch).chmod(0o755)
        copy = copy_project(Path(scratch))
        where = subprocess.run(
            [sys.executable, "-c", "import pyprocconn; print(pyprocconn.__file__)"],
            cwd=copy,
            env=importing(copy),
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        if not where.startswith(str(copy)):
            print(f"the copy imports another pyprocconn ({where.strip()}): cannot mutate it")
            return 2
        stale = [m.name for m in chosen if (copy / m.file).read_text().count(m.old) != 1]
        if stale:
            print(f"these mutations no longer apply (the code changed): {stale}")
            return 2
        tests = tuple(dict.fromkeys(t for m in chosen for t in m.tests))
        code, summary = _pytest(copy, tests)
        if code != 0:
            print(f"the unmutated copy fails its tests ({summary}): fix that first")
            return 2
        survivors = []
        for mutation in chosen:
            path = copy / mutation.file
            original = path.read_text()
            path.write_text(original.replace(mutation.old, mutation.new))
            began = time.monotonic()
            try:
                code, summary = _pytest(copy, mutation.tests)
            finally:
                path.write_text(original)
            verdict = "killed" if code not in (0, 5) else "SURVIVED"
            if code == 5:
                summary = "no tests collected"
            if verdict == "SURVIVED":
                survivors.append(mutation.name)
            print(
                f"{verdict:8}  {mutation.name}  ({time.monotonic() - began:.0f} s: {summary})",
                flush=True,
            )
    killed = len(chosen) - len(survivors)
    print(f"{killed}/{len(chosen)} mutations killed in {time.monotonic() - started:.0f} s")
    if survivors:
        print(f"survived: {'; '.join(survivors)}")
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main())
