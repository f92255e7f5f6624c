"""The rgflow application: the `rgflow` command line (`cli`) and the figure pipeline
`rgflow reproduce` (`reproduce`), built on the studies of `rgflow.studies`."""
