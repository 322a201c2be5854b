# bootherd pre-install: tell the management node this node is installing (unless site.nodestatus
# turns status reporting off).
case "#XCATVAR:NODESTATUS#" in
0 | n | N | no | NO) ;;
*) bootherd_tell installstatus installing ;;
esac
