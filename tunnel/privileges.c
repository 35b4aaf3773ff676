#include "privileges.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "log.h"

int privileges_drop(const struct config *config)
{
	struct passwd *account = NULL;
	uid_t uid = 0;
	gid_t gid = 0;

	if (config->user == NULL && config->chroot_dir == NULL)
		return 0;
	if (geteuid() != 0) {
		log_event(LOG_ERROR, "privileges_failed",
			  "error=\"user and chroot need the daemon to start as root; remove them or start as root\"");
		return -1;
	}

	/* Looked up before chroot, where /etc/passwd is usually missing. */
	if (config->user != NULL) {
		errno = 0;
		account = getpwnam(config->user);
		if (account == NULL) {
			log_event(LOG_ERROR, "privileges_failed", "user=%s error=\"no such user%s%s\"", config->user,
				  errno != 0 ? ": " : "", errno != 0 ? strerror(errno) : "");
			return -1;
		}
		uid = account->pw_uid;
		gid = account->pw_gid;
	}

	if (config->chroot_dir != NULL) {
		if (chroot(config->chroot_dir) != 0 || chdir("/") != 0) {
			log_event(LOG_ERROR, "privileges_failed", "chroot=%s error=\"%s\"", config->chroot_dir,
				  strerror(errno));
			return -1;
		}
	}

	if (config->user != NULL) {
		/* Groups first: after setuid() the process may no longer change them. */
		if (setgroups(1, &gid) != 0 || setgid(gid) != 0 || setuid(uid) != 0) {
			log_event(LOG_ERROR, "privileges_failed", "user=%s error=\"%s\"", config->user,
				  strerror(errno));
			return -1;
		}
		if (setuid(0) == 0) {
			log_event(LOG_ERROR, "privileges_failed", "user=%s error=\"root could be regained\"",
				  config->user);
			return -1;
		}
	}

	log_event(LOG_INFO, "privileges_dropped", "user=%s uid=%u gid=%u chroot=%s",
		  config->user != NULL ? config->user : "-", (unsigned)getuid(), (unsigned)getgid(),
		  config->chroot_dir != NULL ? config->chroot_dir : "-");
	return 0;
}
