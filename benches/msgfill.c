/* Fill one SysV queue with COUNT messages of SIZE text bytes (one pattern),
 * print "ready", hold them until stdin closes, then remove the queue.
 * A slab cache filled from user space, for the census benchmark. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: msgfill COUNT SIZE\n");
        return 2;
    }
    long count = atol(argv[1]);
    size_t size = (size_t)atol(argv[2]);
    int id = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
    if (id < 0) {
        perror("msgget");
        return 1;
    }
    struct { long mtype; char mtext[8192]; } msg = { .mtype = 1 };
    memset(msg.mtext, 'c', sizeof msg.mtext);
    for (long k = 0; k < count; k++) {
        if (msgsnd(id, &msg, size, IPC_NOWAIT) != 0) {
            perror("msgsnd (raise kernel.msgmnb)");
            msgctl(id, IPC_RMID, NULL);
            return 1;
        }
    }
    printf("ready\n");
    fflush(stdout);
    char c;
    while (read(0, &c, 1) > 0) {
    }
    msgctl(id, IPC_RMID, NULL);
    return 0;
}
