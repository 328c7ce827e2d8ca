/* A shared object that is not a sysak plugin: no entry symbol. */
int not_a_plugin(void) { return 42; }
