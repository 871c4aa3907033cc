/*
 * pgwarden_archive: an archive module (archive_library, PostgreSQL 15+) that hands each WAL file
 * to the server's own pgwarden archive agent over its Unix socket, inside the archiver process:
 * no process is started per segment.
 *
 * It holds no key and encrypts nothing. The agent (src/storage/backup/wal-archive.ts, run by the
 * platform as root, one per server) encrypts the file and stores it durably before it answers
 * OK; only then does this module return true and PostgreSQL mark the segment .done. A crash
 * between the agent's store and PostgreSQL's bookkeeping makes PostgreSQL send the same file
 * again: the agent answers OK when the stored copy is identical and refuses a different one.
 *
 * Protocol (the agent's; one request per connection):
 *   ARCHIVE <walFileName> <size>\n<size bytes>      -> OK\n | ERR <message>\n
 *
 * Settings:
 *   archive_library = 'pgwarden_archive'
 *   pgwarden_archive.socket = '<agent socket>'      (PGC_SIGHUP; the platform writes it)
 *   pgwarden_archive.timeout = 600                  (seconds without progress before giving up)
 * On any failure the module reports a WARNING with the agent's reason and returns false:
 * PostgreSQL keeps the segment and retries.
 */
#include "postgres.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "fmgr.h"
#include "miscadmin.h"
#include "postmaster/pgarch.h"
#include "storage/fd.h"
#include "utils/guc.h"
#if PG_VERSION_NUM >= 160000
#include "archive/archive_module.h"
#endif

PG_MODULE_MAGIC;

#define CHUNK (256 * 1024)
#define REPLY_MAX 1024

static char *agent_socket = NULL;
static int	agent_timeout = 600;

#if PG_VERSION_NUM < 160000
void		_PG_init(void);
void		_PG_archive_module_init(ArchiveModuleCallbacks *cb);
#endif

void
_PG_init(void)
{
	DefineCustomStringVariable("pgwarden_archive.socket",
							   "Unix socket of this server's pgwarden archive agent.",
							   NULL, &agent_socket, "", PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("pgwarden_archive.timeout",
							"Seconds without progress before an archive request is given up.",
							NULL, &agent_timeout, 600, 1, 86400, PGC_SIGHUP, GUC_UNIT_S,
							NULL, NULL, NULL);
	MarkGUCPrefixReserved("pgwarden_archive");
}

static bool
configured(void)
{
	return agent_socket != NULL && agent_socket[0] != '\0';
}

/* Writes all of buf; false (errno set) on error. */
static bool
send_all(int fd, const char *buf, size_t len)
{
	while (len > 0)
	{
		ssize_t		n = send(fd, buf, len, MSG_NOSIGNAL);

		if (n < 0)
		{
			if (errno == EINTR)
				continue;
			return false;
		}
		buf += n;
		len -= (size_t) n;
	}
	return true;
}

/* Connects to the agent; -1 with a message in *why on failure. */
static int
connect_agent(const char **why)
{
	struct sockaddr_un addr;
	struct timeval tv;
	int			fd;

	if (strlen(agent_socket) >= sizeof(addr.sun_path))
	{
		*why = "pgwarden_archive.socket is too long for a Unix socket path";
		return -1;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
	{
		*why = strerror(errno);
		return -1;
	}
	tv.tv_sec = agent_timeout;
	tv.tv_usec = 0;
	(void) setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	(void) setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	memset(&addr, 0, sizeof(addr));
	addr.sun_family = AF_UNIX;
	strlcpy(addr.sun_path, agent_socket, sizeof(addr.sun_path));
	while (connect(fd, (struct sockaddr *) &addr, sizeof(addr)) < 0)
	{
		if (errno == EINTR)
			continue;
		*why = strerror(errno);
		close(fd);
		return -1;
	}
	return fd;
}

/* Reads the agent's one-line answer into reply (NUL-terminated, newline dropped). */
static bool
read_reply(int fd, char *reply, size_t cap)
{
	size_t		got = 0;

	for (;;)
	{
		ssize_t		n = recv(fd, reply + got, cap - 1 - got, 0);

		if (n < 0)
		{
			if (errno == EINTR)
				continue;
			return false;
		}
		if (n == 0)
			break;
		got += (size_t) n;
		if (memchr(reply, '\n', got) != NULL || got == cap - 1)
			break;
	}
	reply[got] = '\0';
	reply[strcspn(reply, "\n")] = '\0';
	return got > 0;
}

static bool
archive_one(const char *file, const char *path)
{
	char		head[MAXPGPATH + 64];
	char		reply[REPLY_MAX];
	struct stat st;
	char	   *buf;
	const char *why = NULL;
	off_t		left;
	int			in,
				fd;
	bool		ok = false;

	if (!configured())
	{
		ereport(WARNING, (errmsg("pgwarden archive of %s failed: pgwarden_archive.socket is not set", file)));
		return false;
	}
	in = OpenTransientFile(path, O_RDONLY | PG_BINARY);
	if (in < 0)
	{
		ereport(WARNING, (errcode_for_file_access(), errmsg("pgwarden archive of %s failed: could not open \"%s\": %m", file, path)));
		return false;
	}
	if (fstat(in, &st) < 0)
	{
		ereport(WARNING, (errcode_for_file_access(), errmsg("pgwarden archive of %s failed: could not stat \"%s\": %m", file, path)));
		CloseTransientFile(in);
		return false;
	}
	fd = connect_agent(&why);
	if (fd < 0)
	{
		ereport(WARNING, (errmsg("pgwarden archive of %s failed: cannot reach the archive agent at %s: %s", file, agent_socket, why)));
		CloseTransientFile(in);
		return false;
	}
	snprintf(head, sizeof(head), "ARCHIVE %s %lld\n", file, (long long) st.st_size);
	buf = palloc(CHUNK);
	if (!send_all(fd, head, strlen(head)))
		why = strerror(errno);
	for (left = st.st_size; why == NULL && left > 0;)
	{
		ssize_t		n = read(in, buf, left < CHUNK ? (size_t) left : CHUNK);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
		{
			why = n < 0 ? strerror(errno) : "the file shrank while it was read";
			break;
		}
		if (!send_all(fd, buf, (size_t) n))
			why = strerror(errno);
		left -= n;
		CHECK_FOR_INTERRUPTS();
	}
	if (why == NULL)
	{
		if (!read_reply(fd, reply, sizeof(reply)))
			why = "the archive agent closed the connection without an answer";
		else if (strcmp(reply, "OK") == 0)
			ok = true;
		else
			why = strncmp(reply, "ERR ", 4) == 0 ? reply + 4 : reply;
	}
	if (!ok)
		ereport(WARNING, (errmsg("pgwarden archive of %s failed: %s", file, why)));
	pfree(buf);
	close(fd);
	CloseTransientFile(in);
	return ok;
}

#if PG_VERSION_NUM >= 160000
static bool
check_configured16(ArchiveModuleState *state)
{
	return configured();
}

static bool
archive_file16(ArchiveModuleState *state, const char *file, const char *path)
{
	return archive_one(file, path);
}

static const ArchiveModuleCallbacks callbacks = {
	.startup_cb = NULL,
	.check_configured_cb = check_configured16,
	.archive_file_cb = archive_file16,
	.shutdown_cb = NULL
};

const ArchiveModuleCallbacks *
_PG_archive_module_init(void)
{
	return &callbacks;
}
#else
void
_PG_archive_module_init(ArchiveModuleCallbacks *cb)
{
	cb->check_configured_cb = configured;
	cb->archive_file_cb = archive_one;
	cb->shutdown_cb = NULL;
}
#endif
