/* Only for `make lint`: cppcheck cannot see through json-c's foreach macro
 * (it stops at "unknown macro"); this stand-in declares the same two
 * variables so the loop bodies are still checked. */
#define json_object_object_foreach(obj, key, val)                              \
	char *key = NULL;                                                      \
	struct json_object *val = NULL;                                        \
	for ((void)(obj); key && val;)
