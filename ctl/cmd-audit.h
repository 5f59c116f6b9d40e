/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * cmd-audit.h: keycustodyctl's "audit" command (offline: it reads files, not the daemon).
 */
#ifndef KC_CMD_AUDIT_H
#define KC_CMD_AUDIT_H

#define CMD_AUDIT_USAGE	"audit verify [--after HASH] [--head HASH] FILE..."

struct ctl_opts;

/**
 * "audit verify [--head HASH] FILE...", in the form of keycustodyctl's command table:
 * argv[0] is the verb. o is not used (no daemon is contacted) and may be NULL. Files are
 * given oldest first; --head checks that the chain ends at a hash recorded elsewhere (the
 * daemon logs its head at rotation and shutdown), which catches an edited last line.
 * @retval exit status: 0 intact; 1 a problem, reported on stderr; 2 usage
 */
int	cmd_audit_verify(struct ctl_opts *o, int argc, char **argv);

#endif /* KC_CMD_AUDIT_H */
