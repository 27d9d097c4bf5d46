/* being written */
int pf_fir_placeholder(void) { return 0; }
