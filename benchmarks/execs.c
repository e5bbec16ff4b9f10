/* Short-lived execs: COUNT times, one every INTERVAL_US microseconds (a fixed cadence, not a
 * sleep after each), fork a child that runs "/bin/true MARK-<RUN>-<i>" and reap it at once.
 * /bin/true lives well under a millisecond after its exec, so a listener has that long to read
 * its command line from /proc. Prints JSON: each child's pid in order and how long it all took.
 * This program's own argv never holds "MARK-", so a listener that shows the parent's command
 * line for a child it could not read never matches. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_COUNT 100000

static double seconds(const struct timespec *ts) { return ts->tv_sec + ts->tv_nsec / 1e9; }

int main(int argc, char **argv) {
	if (argc != 4) {
		fprintf(stderr, "usage: execs RUN COUNT INTERVAL_US\n");
		return 2;
	}
	const char *run = argv[1];
	int count = atoi(argv[2]);
	long interval_ns = atol(argv[3]) * 1000L;
	if (count < 1 || count > MAX_COUNT || interval_ns < 0)
		return 2;
	static pid_t pids[MAX_COUNT];
	struct timespec start, next, end;
	clock_gettime(CLOCK_MONOTONIC, &start);
	next = start;
	for (int i = 0; i < count; i++) {
		char mark[64];
		snprintf(mark, sizeof(mark), "MARK-%s-%d", run, i);
		pid_t child = fork();
		if (child == 0) {
			execl("/bin/true", "/bin/true", mark, (char *)NULL);
			_exit(127);
		}
		pids[i] = child;
		if (child > 0)
			waitpid(child, NULL, 0);
		next.tv_nsec += interval_ns;
		while (next.tv_nsec >= 1000000000L) {
			next.tv_nsec -= 1000000000L;
			next.tv_sec++;
		}
		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
	}
	clock_gettime(CLOCK_MONOTONIC, &end);
	printf("{\"run\": \"%s\", \"pids\": [", run);
	for (int i = 0; i < count; i++)
		printf("%s%d", i ? ", " : "", pids[i]);
	printf("], \"seconds\": %.6f}\n", seconds(&end) - seconds(&start));
	return 0;
}
