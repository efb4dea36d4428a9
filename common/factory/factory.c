/* placeholder: being written */
typedef int camtrust_placeholder_;
