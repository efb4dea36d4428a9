/* placeholder */
typedef int camtrust_placeholder_;
