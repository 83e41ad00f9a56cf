/* Same-named functions as main.c's: a second static twin(), a weak weak_or_local(). */
static __attribute__((noinline)) long twin(void)
{
	return 2;
}

long twin_b(void)
{
	return twin();
}

__attribute__((weak, noinline)) long weak_or_local(void)
{
	return 4;
}

long weak_or_local_b(void)
{
	return weak_or_local();
}
