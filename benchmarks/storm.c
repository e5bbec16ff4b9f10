/* A fork storm: WORKERS processes each fork children that exit at once, for SECONDS.
 * Prints JSON: the workers' pids, exactly how many children they made and the exit code their
 * EXIT events carry, so a listener knows how many FORK and EXIT events (one each per child,
 * parent = a worker) to expect and can tell them from other processes' events. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Every child exits with this status: an EXIT the kernel reports with parent 0 (the worker
 * reaped first) still names the storm, even when a round wraps the pid space. */
#define STATUS 107

static double now(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
	if (argc != 3) {
		fprintf(stderr, "usage: storm WORKERS SECONDS\n");
		return 2;
	}
	int workers = atoi(argv[1]);
	double seconds = atof(argv[2]);
	int results[2];
	if (workers < 1 || workers > 256 || pipe(results) != 0)
		return 2;
	pid_t pids[256];
	double start = now();
	for (int w = 0; w < workers; w++) {
		pids[w] = fork();
		if (pids[w] == 0) {
			long made = 0;
			double deadline = start + seconds;
			while (now() < deadline) {
				pid_t child = fork();
				if (child == 0)
					_exit(STATUS);
				if (child > 0) {
					waitpid(child, NULL, 0);
					made++;
				}
			}
			if (write(results[1], &made, sizeof(made)) != sizeof(made))
				_exit(1);
			_exit(0);
		}
	}
	long total = 0;
	for (int w = 0; w < workers; w++) {
		long made = 0;
		if (read(results[0], &made, sizeof(made)) == sizeof(made))
			total += made;
	}
	for (int w = 0; w < workers; w++)
		waitpid(pids[w], NULL, 0);
	double elapsed = now() - start;
	printf("{\"workers\": [");
	for (int w = 0; w < workers; w++)
		printf("%s%d", w ? ", " : "", pids[w]);
	printf("], \"forks\": %ld, \"exit_code\": %d, \"seconds\": %.6f}\n", total, STATUS << 8,
	       elapsed);
	return 0;
}
